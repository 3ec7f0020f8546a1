"""The simulated hospital is one an insurance office would believe.

A seeded run (fixed seed, fixed clock) is planned and written out once, checked against
the event contract, and run through the pure cost core with the sample catalogue, as
the worker would price it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.casecost import targets as pacing
from services.casecost.apply import apply_event, new_case
from services.casecost.events import TIMESTAMP_FIELDS, parse_event
from services.casecost.pricing import Catalogue, PriceBook
from services.casecost.state import CaseState
from services.demo.hospital import ALTERNATIVES, DEPARTMENTS, ITEMS, PATHWAYS
from services.demo.run import demo_targets, new_run, sample_hospital
from services.demo.simulation import (
    RESCUE_DRUGS,
    CasePlan,
    Hospital,
    Segment,
    TimedEvent,
    Timeline,
    case_events,
    hospital_events,
    plan_cases,
)

ZONE = ZoneInfo("Asia/Shanghai")
ANCHOR = datetime(2026, 12, 1, 2, 30, 15, tzinfo=UTC)
LIVE = timedelta(hours=12)


@dataclass(frozen=True)
class Run:
    hospital: Hospital
    plans: list[CasePlan]
    events: list[TimedEvent]
    states: dict[str, CaseState]  # every case as the core prices its history

    @property
    def history(self) -> list[TimedEvent]:
        return [event for event in self.events if event.at <= self.hospital.anchor]


def _hospital(seed: int = 7, anchor: datetime = ANCHOR) -> Hospital:
    state = new_run(now=anchor, zone=ZONE, seed=seed, hospital_id="H001", history_days=14)
    return sample_hospital(
        run_id=state.run_id,
        seed=state.seed,
        anchor=state.anchor,
        zone=ZONE,
        hospital_id=state.hospital_id,
        history_days=14,
    )


def _price_book(hospital: Hospital) -> PriceBook:
    sample = Catalogue(
        1, "sample", datetime(2026, 1, 1).date(), hospital.base_rates, hospital.groups
    )
    return PriceBook(version=1, catalogues=(sample,), zone=ZONE)


@pytest.fixture(scope="module")
def run() -> Run:
    hospital = _hospital()
    plans = plan_cases(hospital, hospital.anchor + LIVE)
    events = hospital_events(hospital, plans)
    book = _price_book(hospital)
    states: dict[str, CaseState] = {}
    timeline = Timeline(hospital.anchor)
    for event in events:
        if event.at > hospital.anchor:
            continue
        parsed = parse_event(timeline.stamped(event))
        state = states.setdefault(parsed.case_id, new_case(parsed.hospital_id, parsed.case_id))
        apply_event(state, parsed, book, hospital.anchor)
    return Run(hospital, plans, events, states)


def _charges(events: list[TimedEvent]) -> list[dict[str, str]]:
    return [event.payload for event in events if event.payload["type"] == "charge"]


def test_the_history_never_runs_ahead_of_the_clock_and_the_live_part_follows_it(run: Run) -> None:
    anchor = run.hospital.anchor
    history = [Timeline(anchor).stamped(event) for event in run.history]
    assert history and all(
        datetime.fromisoformat(event[name]) <= anchor
        for event in history
        for name in TIMESTAMP_FIELDS
        if name in event
    )
    earliest = min(datetime.fromisoformat(event["occurred_at"]) for event in history)
    assert anchor - earliest < timedelta(days=90)  # never a backdating warning
    # live: 12 hospital hours in 4 real minutes, starting a minute after the history
    start = anchor + timedelta(minutes=1)
    segment = Segment(sim_start=anchor, real_start=start, speed=LIVE / timedelta(minutes=4))
    timeline = Timeline(anchor, (segment,))
    live = [event for event in run.events if anchor < event.at <= anchor + LIVE]
    assert len(live) > 200
    for event in live:
        stamped = timeline.stamped(event)
        moment = datetime.fromisoformat(stamped["occurred_at"])
        assert start <= moment <= start + timedelta(minutes=4)
        # the time the run posts it at: the same mapping, never earlier than its date
        assert moment <= segment.to_real(event.at)


def test_every_event_is_a_valid_contract_event_with_chinese_names_and_orders(run: Run) -> None:
    timeline = Timeline(run.hospital.anchor)
    for event in run.history:
        parse_event(timeline.stamped(event))
    charges = _charges(run.history)
    assert all(charge["ordered_by"] and charge["order_id"] for charge in charges)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in charge["item_name"]) for charge in charges)
    assert {charge["department"] for charge in charges} <= set(DEPARTMENTS)
    assert all(item.name_en.isascii() and item.name_en for item in ITEMS.values())
    # a standing order keeps its id from day to day
    orders = Counter((charge["case_id"], charge["order_id"]) for charge in charges)
    assert max(orders.values()) >= 5


def test_stays_scatter_around_the_drg_average_stay_right_skewed(run: Run) -> None:
    # the stays admitted during the history, whatever their end (not only those over)
    admitted = [plan for plan in run.plans if plan.admitted_at >= run.hospital.history_start]
    assert len(admitted) > 250
    relative = [plan.los_days / float(plan.avg_los_days) for plan in admitted]
    assert 0.9 <= statistics.mean(relative) <= 1.15
    assert statistics.median(relative) < statistics.mean(relative)  # a long right tail
    assert min(plan.los_days for plan in admitted) >= 1
    # the longest ordinary stays reach 1.5 times the average, the bound of the shipped
    # stay-over-average rule (a longer stay is planted to fire it)
    assert 1.4 <= max(relative) <= 1.5 and min(relative) < 0.5


def test_items_follow_the_department_and_the_drg(run: Run) -> None:
    by_case: dict[str, list[dict[str, str]]] = defaultdict(list)
    for charge in _charges(run.events):
        by_case[charge["case_id"]].append(charge)
    plans = {plan.case_id: plan for plan in run.plans}
    stents = Counter[str]()
    seen_pathways = set()
    for case_id, charges in by_case.items():
        plan = plans[case_id]
        codes = Counter[str]()
        for charge in charges:
            codes[charge["item_code"]] += int(Decimal(charge["quantity"]))
            if charge["item_code"].startswith("C-STENT"):
                assert charge["department"] == "XNK", "a stent outside cardiology"
                stents[charge["item_code"]] += int(Decimal(charge["quantity"]))
        name = plan.pathway.name
        if not plan.operated or not plan.pathway.operation:
            continue
        seen_pathways.add(name)
        if name == "pci":
            assert codes["P-PCI"] == 1 and codes["P-PCI-EXTRA"] <= 1
            assert codes["C-STENT-DOM"] + codes["C-STENT-IMP"] == 1 + codes["P-PCI-EXTRA"]
            assert codes["C-IVUS"] == codes["P-IVUS"] <= 1
        if name == "hip or knee replacement":
            assert codes["C-HIP"] == codes["P-THA"] and codes["C-KNEE"] == codes["P-TKA"]
            assert codes["C-HIP"] + codes["C-KNEE"] == 1
            assert not any(code.startswith("C-STENT") for code in codes)
        if name == "craniotomy":
            assert codes["C-DURA"] == 1 and codes["P-CRANIOTOMY"] == 1
    assert {"pci", "hip or knee replacement", "craniotomy"} <= seen_pathways
    assert stents["C-STENT-DOM"] > 2 * stents["C-STENT-IMP"] > 0
    palliative = [plan for plan in run.plans if plan.pathway.name == "palliative care"]
    assert palliative
    for plan in palliative:
        categories = {charge["category"] for charge in by_case[plan.case_id]}
        names = {charge["item_code"] for charge in by_case[plan.case_id]}
        assert "drug" in categories and "nursing" in categories
        assert not names & {"P-ANAES-GEN", "C-STENT-DOM", "C-STENT-IMP", "P-PCI"}


ANTIBIOTICS = {
    "D-CEFTRIAXONE", "D-CEFUROXIME", "D-CEFAZOLIN", "D-PIPTAZO", "D-MEROPENEM",
    "D-MOXIFLOXACIN", "D-ORNIDAZOLE",
}  # fmt: skip
ANTINEOPLASTICS = {
    "D-OXALIPLATIN", "D-CISPLATIN", "D-DOCETAXEL", "D-PACLITAXEL-ALB", "D-PEMETREXED",
    "D-GEMCITABINE", "D-RITUXIMAB", "D-CYCLOPHOSPHAMIDE", "D-DOXORUBICIN", "D-VINCRISTINE",
}  # fmt: skip
# what a pathway's cases are never given: no antibiotics for an asthma attack, no
# parenteral nutrition or albumin after a day-surgery operation, no prokinetic in a bowel
# obstruction, no stroke drugs for Parkinson's disease, no chemotherapy outside oncology
NEVER: dict[str, set[str]] = {
    "asthma": ANTIBIOTICS,
    "hernia repair": {"D-SOMATOSTATIN", "D-PN-BAG", "D-ALBUMIN", "D-ORNIDAZOLE"},
    "laparoscopic cholecystectomy": {"D-SOMATOSTATIN", "D-PN-BAG", "D-AMINO-ACIDS"},
    "appendicectomy": {"D-SOMATOSTATIN", "D-PN-BAG", "D-ALBUMIN"},
    "intestinal obstruction": {"D-METOCLOPRAMIDE"},
    "epilepsy": {"D-MANNITOL"},
    "degenerative disorders": {"D-BUTYLPHTHALIDE", "D-EDARAVONE"},
    "angina": {"D-FUROSEMIDE"},
    "lymphoma": {"D-DOCETAXEL"},
}


def test_each_case_is_treated_as_its_condition_is(run: Run) -> None:
    by_case: dict[str, list[dict[str, str]]] = defaultdict(list)
    for charge in _charges(run.events):
        by_case[charge["case_id"]].append(charge)
    seen: set[str] = set()
    for plan in run.plans:
        charges = by_case[plan.case_id]
        codes = {charge["item_code"] for charge in charges}
        forbidden = codes & NEVER.get(plan.pathway.name, set())
        assert not forbidden, (plan.pathway.name, forbidden)
        for group in ALTERNATIVES:  # one P2Y12 inhibitor, one anticoagulant, ...
            assert len(codes & group) <= 1, (plan.pathway.name, codes & group)
        if plan.pathway.department != "ZLK":
            assert not codes & ANTINEOPLASTICS, plan.pathway.name
        # a chemotherapy cycle is given on one day, pegfilgrastim once
        days = {
            charge["occurred_at"][:10]
            for charge in charges
            if charge["item_code"] in ANTINEOPLASTICS | {"D-PEG-GCSF"}
        }
        assert len(days) <= 1, (plan.case_id, days)
        if days:
            seen.add(plan.pathway.name)
        if not plan.intensive_days:
            assert "D-NOREPINEPHRINE" not in codes
    assert "lymphoma" in seen and any(name.startswith("chemotherapy") for name in seen)


def test_the_core_prices_a_plausible_hospital(run: Run) -> None:
    discharged = [s for s in run.states.values() if s.discharged_at and s.standard_cost]
    open_cases = [s for s in run.states.values() if s.discharged_at is None]
    assert len(discharged) > 150 and 100 < len(open_cases) < 300
    ratios = [s.total_cost / s.standard_cost for s in discharged if s.standard_cost]
    high = sum(r > 2 for r in ratios) / len(ratios)
    low = sum(r < Decimal("0.4") for r in ratios) / len(ratios)
    assert 0.005 <= high <= 0.06 and 0.005 <= low <= 0.08
    within = sum(Decimal("0.6") <= r <= Decimal("1.1") for r in ratios) / len(ratios)
    assert within > 0.6
    # cost consumption index: per DRG mean ratio, weighted by cases
    by_drg: dict[str, list[Decimal]] = defaultdict(list)
    for state, ratio in zip(discharged, ratios, strict=True):
        assert state.drg_code is not None
        by_drg[state.drg_code].append(ratio)
    cost_index = sum(sum(values) for values in by_drg.values()) / len(ratios)
    assert Decimal("0.85") <= cost_index <= Decimal("1.1")
    # a tertiary hospital's case mix index; about a fifth to a third of its cases over
    # their standard at discharge
    weights = [run.hospital.groups[s.drg_code].weight for s in discharged if s.drg_code]
    assert Decimal("1.1") <= sum(weights) / len(weights) <= Decimal("1.5")
    assert 0.18 <= sum(r > 1 for r in ratios) / len(ratios) <= 0.35
    totals: Counter[str] = Counter()
    for state in discharged:
        for category, amount in state.cost_by_category.items():
            totals[category] += amount  # type: ignore[assignment]
    total = sum(totals.values())
    assert 0.2 <= totals["drug"] / total <= 0.38
    assert 0.12 <= totals["consumable"] / total <= 0.3
    # Of the cases in hospital, about one in twelve is already over its standard (red):
    # those with complications and the long stays, which a census holds more of than the
    # admissions do; a few more are on their way (blue, yellow).
    levels = Counter(s.level for s in open_cases)
    assert 0.05 <= levels["red"] / len(open_cases) <= 0.11
    assert 0.02 <= (levels["blue"] + levels["yellow"]) / len(open_cases) <= 0.15
    assert levels["none"] > 0.75 * len(open_cases)


def test_a_run_is_the_same_for_its_seed_and_clock_and_runs_never_share_ids() -> None:
    first = _hospital(seed=11)
    again = _hospital(seed=11)
    later = _hospital(seed=11, anchor=ANCHOR + timedelta(minutes=3))
    until = ANCHOR - timedelta(days=13)  # a few days are enough
    a, b, c = (plan_cases(h, until)[:40] for h in (first, again, later))
    events_a = [e.payload for plan in a for e in case_events(first, plan)]
    events_b = [e.payload for plan in b for e in case_events(again, plan)]
    events_c = [e.payload for plan in c for e in case_events(later, plan)]
    assert events_a == events_b
    assert {e["case_id"] for e in events_a}.isdisjoint({e["case_id"] for e in events_c})
    assert {e["event_id"] for e in events_a}.isdisjoint({e["event_id"] for e in events_c})
    assert len({e["event_id"] for e in events_a}) == len(events_a)


def test_every_department_and_pathway_has_what_it_needs() -> None:
    hospital = _hospital()
    assert len({pathway.name for pathway in PATHWAYS}) == len(PATHWAYS)
    assert all(code in ITEMS for group in ALTERNATIVES for code in group)
    assert all(ITEMS[code].category == "drug" for code in RESCUE_DRUGS)
    for pathway in PATHWAYS:
        assert pathway.department in DEPARTMENTS
        assert any(code.startswith(pathway.adrg) for code in hospital.groups), pathway.name
        for part in pathway.operation:
            assert all(code in ITEMS for code, _ in part.choices)
        for code in (*pathway.drugs, *pathway.labs, *pathway.exams, *pathway.treatments):
            assert code in ITEMS, code
        assert abs(sum(pathway.mix.values()) - 1) < 1e-9
    for department in DEPARTMENTS.values():
        assert department.code.isascii() and department.name_zh and department.name_en
        assert 25 <= department.beds <= 60


def test_the_targets_put_most_departments_on_track_and_some_over(run: Run) -> None:
    # the year's progress as the service computes it from the history the core priced:
    # the departments with room are on track, every third is over its ceilings
    hospital = run.hospital
    targets = demo_targets(hospital, run.plans)
    today = hospital.anchor_day
    codes = sorted(hospital.departments)
    assert set(targets) == {(code, period) for code in codes for period in ("2026-12", "2026")}
    year = pacing.parse_period("2026")
    paces: dict[str, dict[str, pacing.Pace | None]] = {}
    for code in codes:
        body = targets[(code, "2026")]
        for measure in ("cost_per_case", "total_cost"):
            assert Decimal(body[measure]) > 0 and Decimal(body[measure]).as_tuple().exponent == -2
        discharged = [
            state
            for state in run.states.values()
            if state.department == code and state.discharged_at is not None
        ]
        cost = sum((state.total_cost for state in discharged), Decimal(0))
        so_far = pacing.actual(len(discharged), cost)
        target = pacing.Figures(
            body["cases"], Decimal(body["cost_per_case"]), Decimal(body["total_cost"])
        )
        paces[code] = pacing.pace(
            target, so_far, pacing.project(year, today, len(discharged), cost)
        )
    over = {code for code, pace in paces.items() if pace["total_cost"] == "over"}
    tight = {code for index, code in enumerate(codes) if index % 3 == 2}
    assert over == tight and tight
    assert all(paces[code]["cost_per_case"] == "over" for code in tight)
    assert all(paces[code]["cost_per_case"] == "on_track" for code in set(codes) - tight)
    assert len(over) < len(codes) / 2
