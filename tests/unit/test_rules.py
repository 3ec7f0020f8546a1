"""Monitoring rules: each case rule on constructed cases, the memory they keep, scoping,
replays, and the department rules over plain period figures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.casecost.apply import apply_event, new_case
from services.casecost.events import Event, parse_event
from services.casecost.rules import (
    MAX_FIRED,
    MAX_ITEM_DAYS,
    MAX_TRACKED_ITEMS,
    CaseMemory,
    CaseRules,
    DepartmentPeriod,
    DrgMonth,
    RuleFile,
    RuleSet,
    evaluate_case,
    evaluate_department,
)
from services.casecost.state import CaseState
from tests.unit.case_events import (
    NOW,
    admitted,
    admitted_raw,
    at,
    book,
    catalogue,
    discharged,
    drg_assigned,
    raw,
)

ZONE = ZoneInfo("Asia/Shanghai")
PRICES = book()


def rules(*specs: dict[str, Any]) -> RuleSet:
    """Rules from their file form: `kind` and `params` given, the rest filled in."""
    filled = [
        {
            "id": spec.get("id", spec["kind"].replace("_", "-")),
            "version": 1,
            "name": {"zh": "规则", "en": "rule"},
            "severity": "yellow",
            **spec,
        }
        for spec in specs
    ]
    return RuleSet(rules=tuple(RuleFile.model_validate({"version": 1, "rules": filled}).rules))


def line(
    event_id: str,
    day: int,
    *,
    item: str = "E-CT",
    category: str = "exam",
    quantity: str = "1",
    unit_price: str = "300.00",
    kind: str = "charge",
    hour: int = 10,
    month: int = 3,
    **fields: Any,
) -> Event:
    amount = (Decimal(quantity) * Decimal(unit_price)).quantize(Decimal("0.01"))
    return parse_event(
        raw(
            kind,
            event_id,
            at(day, hour, month=month),
            department=fields.pop("department", "CARD"),
            item_code=item,
            item_name=f"name of {item}",
            category=category,
            quantity=quantity,
            unit_price=unit_price,
            amount=str(amount),
            **fields,
        )
    )


class Case:
    """A case with rules: events applied as the worker will, findings collected."""

    def __init__(self, rule_set: RuleSet, memory: CaseMemory | None = None) -> None:
        self.rules = CaseRules.compile(rule_set, ZONE)
        self.state: CaseState = new_case("H1", "C1")
        self.memory = memory or CaseMemory()
        self.findings: list[dict[str, Any]] = []

    def apply(self, *events: Event) -> list[dict[str, Any]]:
        found = []
        for event in events:
            outcome = apply_event(self.state, event, PRICES, NOW)
            if outcome.duplicate:
                continue
            self.memory, new = evaluate_case(self.rules, self.memory, self.state, event, NOW)
            found.extend(new)
        self.findings.extend(found)
        return found


# --- repeat_item ------------------------------------------------------------------------------


def test_an_exam_charged_again_within_three_days_is_found_once_with_its_days() -> None:
    case = Case(rules({"kind": "repeat_item", "params": {"within_days": 3}}))
    assert case.apply(admitted(), line("ct1", 2)) == []
    [finding] = case.apply(line("ct2", 4))
    assert finding["kind"] == "rule"
    assert finding["rule_id"] == "repeat-item" and finding["rule_version"] == 1
    assert finding["severity"] == finding["level"] == "yellow"
    assert finding["event_id"] == "ct2" and finding["case_id"] == "C1"
    assert finding["department"] == "CARD" and finding["period"] == "2026-03-04/E-CT"
    assert finding["detail"] == {
        "item_code": "E-CT",
        "item_name": "name of E-CT",
        "category": "exam",
        "day": "2026-03-04",
        "other_days": ["2026-03-02"],
        "within_days": 3,
        "amount": "300.00",
    }
    assert "E-CT" in finding["text_zh"] and "2026-03-02" in finding["text_zh"]
    assert finding["text_en"].startswith("name of E-CT (E-CT) charged again on 2026-03-04")
    json.dumps(finding)  # plain data, ready for the changelog and the wire


@pytest.mark.parametrize(("second_day", "found"), [(5, True), (6, False)])
def test_within_days_counts_local_days_apart(second_day: int, found: bool) -> None:
    case = Case(rules({"kind": "repeat_item", "params": {"within_days": 3}}))
    case.apply(admitted(), line("ct1", 2))
    assert bool(case.apply(line("ct2", second_day))) is found


def test_the_local_day_decides_not_the_utc_day() -> None:
    # 23:30 UTC on the 1st is 07:30 on the 2nd in Shanghai: the same local day as the first
    # CT, so not a repeat on another day (by UTC days it would be one)
    case = Case(rules({"kind": "repeat_item", "params": {"within_days": 2}}))
    first = line("ct1", 2, hour=8)
    same_local_day = parse_event(
        {**first.model_dump(mode="json"), "event_id": "ct2", "occurred_at": "2026-03-01T23:30:00Z"}
    )
    assert case.apply(admitted(), first, same_local_day) == []


def test_a_credited_charge_no_longer_counts_as_an_earlier_exam() -> None:
    case = Case(rules({"kind": "repeat_item"}))
    # charged by mistake on the 2nd and credited the next day
    assert case.apply(admitted(), line("ct1", 2), line("ct1-back", 3, kind="credit")) == []
    assert case.apply(line("ct2", 4)) == []
    # a real repeat after that still counts
    assert [f["detail"]["other_days"] for f in case.apply(line("ct3", 5))] == [["2026-03-04"]]


def test_only_the_listed_categories_and_not_the_excluded_items_repeat() -> None:
    case = Case(
        rules(
            {"kind": "repeat_item", "params": {"categories": ["lab"], "exclude_items": ["L-POC"]}}
        )
    )
    events = [
        admitted(),
        line("ct1", 2),
        line("ct2", 3),  # an exam: not listed
        line("g1", 2, item="L-POC", category="lab", unit_price="8.00"),
        line("g2", 3, item="L-POC", category="lab", unit_price="8.00"),  # excluded
        line("d1", 2, item="D-X", category="drug"),
        line("d2", 3, item="D-X", category="drug"),
    ]
    assert case.apply(*events) == []
    [finding] = case.apply(
        line("cbc1", 2, item="L-CBC", category="lab"), line("cbc2", 3, item="L-CBC", category="lab")
    )
    assert finding["detail"]["item_code"] == "L-CBC"


def test_items_below_the_unit_price_floor_are_not_checked() -> None:
    case = Case(rules({"kind": "repeat_item", "params": {"min_unit_price": "50"}}))
    cbc = {"item": "L-CBC", "category": "lab", "unit_price": "49.99"}
    case.apply(admitted(), line("cbc1", 2, **cbc), line("cbc2", 3, **cbc))
    assert case.findings == []
    case.apply(line("ct1", 2, unit_price="50.00"), line("ct2", 3, unit_price="50.00"))
    assert [f["detail"]["item_code"] for f in case.findings] == ["E-CT"]


def test_each_repeat_day_is_its_own_finding_and_a_duplicate_event_raises_nothing() -> None:
    case = Case(rules({"kind": "repeat_item"}))
    case.apply(admitted(), line("ct1", 2), line("ct2", 3), line("ct2", 3), line("ct3", 4))
    assert [f["period"] for f in case.findings] == ["2026-03-03/E-CT", "2026-03-04/E-CT"]
    assert case.findings[1]["detail"]["other_days"] == ["2026-03-02", "2026-03-03"]


# --- same_day_repeats -------------------------------------------------------------------------


def test_the_same_item_more_than_n_times_in_one_day_is_found_once() -> None:
    case = Case(rules({"kind": "same_day_repeats", "params": {"max_per_day": 3}}))
    case.apply(
        admitted(), *(line(f"p{n}", 2, item="P-DRESS", category="procedure") for n in (1, 2, 3))
    )
    assert case.findings == []
    [finding] = case.apply(line("p4", 2, item="P-DRESS", category="procedure"))
    assert finding["detail"]["times"] == "4" and finding["period"] == "2026-03-02/P-DRESS"
    assert case.apply(line("p5", 2, item="P-DRESS", category="procedure")) == []
    # another day starts afresh
    assert (
        case.apply(*(line(f"q{n}", 3, item="P-DRESS", category="procedure") for n in (1, 2, 3)))
        == []
    )


def test_one_line_of_many_units_is_one_time() -> None:
    # ventilation is charged by the hour: 24 units on one line is one charge, not splitting
    case = Case(rules({"kind": "same_day_repeats", "params": {"max_per_day": 3}}))
    vent = {"item": "P-VENT", "category": "procedure", "unit_price": "10.00"}
    case.apply(admitted(), line("v1", 2, quantity="24", **vent))
    assert case.findings == []
    # the same hours split over four lines is
    case.apply(*(line(f"w{n}", 3, quantity="6", **vent) for n in range(4)))
    assert [f["detail"]["times"] for f in case.findings] == ["4"]


def test_a_credited_line_no_longer_counts_as_a_time() -> None:
    case = Case(rules({"kind": "same_day_repeats", "params": {"max_per_day": 3}}))
    lab = {"item": "L-GLU", "category": "lab", "unit_price": "8.00"}
    case.apply(admitted(), *(line(f"g{n}", 2, **lab) for n in range(3)))
    case.apply(line("g0-back", 2, kind="credit", **lab))
    assert case.apply(line("g3", 2, **lab)) == []  # 4 lines, one credited: 3 times
    [finding] = case.apply(line("g4", 2, **lab))
    assert finding["detail"]["times"] == "4"


def test_same_day_repeats_leaves_drugs_alone_by_default() -> None:
    case = Case(rules({"kind": "same_day_repeats"}))
    case.apply(admitted(), *(line(f"d{n}", 2, item="D-NS", category="drug") for n in range(6)))
    assert case.findings == []


# --- order_bound ------------------------------------------------------------------------------


def test_a_single_order_over_its_category_amount_or_quantity_bound_is_found() -> None:
    bounds = {"drug": {"max_amount": "10000", "max_quantity": "100"}}
    case = Case(rules({"kind": "order_bound", "params": {"bounds": bounds}}))
    case.apply(admitted())
    assert case.apply(line("ok", 2, category="drug", item="D-A", unit_price="10000.00")) == []
    [by_amount] = case.apply(line("big", 2, category="drug", item="D-A", unit_price="10000.01"))
    assert by_amount["period"] == "order/big"
    assert (
        by_amount["detail"]["max_amount"] == "10000" and by_amount["detail"]["amount"] == "10000.01"
    )
    assert "10000.01" in by_amount["text_zh"] and "amount 10000.01" in by_amount["text_en"]
    [by_quantity] = case.apply(
        line("many", 2, category="drug", item="D-B", quantity="101", unit_price="1.00")
    )
    assert "quantity 101" in by_quantity["text_en"] and "amount" not in by_quantity["text_en"]


def test_an_order_of_a_category_without_a_bound_and_a_credit_are_never_found() -> None:
    case = Case(rules({"kind": "order_bound"}))  # the shipped bounds: none for beds
    case.apply(
        admitted(), line("bed", 2, category="bed", item="B-W", quantity="30", unit_price="50000.00")
    )
    case.apply(line("back", 2, category="drug", item="D-A", unit_price="50000.00", kind="credit"))
    assert case.findings == []
    [finding] = case.apply(
        line("stents", 2, category="consumable", item="C-DES", quantity="3", unit_price="12000.00")
    )
    assert finding["detail"]["amount"] == "36000.00"


# --- daily_spike ------------------------------------------------------------------------------


def spike_case(day_four: str, min_day_amount: str = "0") -> Case:
    case = Case(
        rules({"kind": "daily_spike", "params": {"factor": "3", "min_day_amount": min_day_amount}})
    )
    case.apply(
        admitted(),
        *(line(f"bed{d}", d, category="bed", item="B", unit_price="100.00") for d in (1, 2, 3)),
    )
    case.apply(line("op", 4, category="procedure", item="P-OP", unit_price=day_four))
    return case


def test_a_day_above_k_times_the_case_s_earlier_daily_mean_is_found() -> None:
    case = spike_case("300.01")
    [finding] = case.findings
    assert finding["period"] == "2026-03-04"
    assert finding["detail"] == {
        "day": "2026-03-04",
        "day_total": "300.01",
        "earlier_days": 3,
        "earlier_mean": "100.00",
        "times_mean": "3.0",
        "factor": "3",
    }
    # more charges the same day: the same day, found once
    assert case.apply(line("op2", 4, category="procedure", item="P-OP2")) == []


def test_exactly_k_times_the_mean_is_not_a_spike_and_the_floor_holds() -> None:
    assert spike_case("300.00").findings == []
    assert spike_case("300.01", min_day_amount="500").findings == []


def test_a_spike_waits_for_the_minimum_number_of_earlier_days() -> None:
    case = Case(rules({"kind": "daily_spike", "params": {"min_days": 3}}))
    case.apply(
        admitted(), line("b1", 1, category="bed", item="B"), line("b2", 2, category="bed", item="B")
    )
    assert case.apply(line("op", 3, category="procedure", item="P", unit_price="5000.00")) == []


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 9), st.integers(1, 400_00), st.booleans()),
        min_size=1,
        max_size=50,
    )
)
def test_the_remembered_sum_of_earlier_days_is_the_sum_afresh(
    lines: list[tuple[int, int, bool]],
) -> None:
    # lines in any order of days, credits among them: the days-before sum kept from event
    # to event always equals the sum worked out afresh, and so do the findings
    spike = rules({"kind": "daily_spike", "params": {"factor": "1.5", "min_days": 2}})
    kept, afresh = Case(spike), Case(spike)
    kept.apply(admitted())
    afresh.apply(admitted())
    for n, (day, cents, is_credit) in enumerate(lines):
        event = line(
            f"e{n}",
            day,
            category="procedure",
            item=f"P{n % 3}",
            unit_price=f"{cents // 100}.{cents % 100:02d}",
            kind="credit" if is_credit else "charge",
        )
        kept.apply(event)
        afresh.memory.day_base = None
        afresh.apply(event)
        base = kept.memory.day_base
        if base is not None:
            earlier = [amount for d, amount in kept.state.cost_by_day.items() if d < base.day]
            assert (base.total, base.days) == (sum(earlier, Decimal(0)), len(earlier))
    assert kept.findings == afresh.findings


# --- category_share ---------------------------------------------------------------------------


def test_a_drug_share_above_its_bound_is_found_once_the_case_costs_the_minimum() -> None:
    case = Case(
        rules(
            {"kind": "category_share", "params": {"shares": {"drug": "0.40"}, "min_total": "5000"}}
        )
    )
    # 80% drugs, but only 2,500 spent
    case.apply(admitted(), line("d1", 2, category="drug", item="D", unit_price="2000.00"))
    case.apply(line("x1", 2, category="exam", item="E", unit_price="500.00"))
    assert case.findings == []
    # 5,000 spent, drugs 2,000: exactly 40%, not above
    case.apply(line("x2", 2, category="exam", item="E2", unit_price="2500.00"))
    assert case.findings == []
    [finding] = case.apply(line("d2", 3, category="drug", item="D", unit_price="0.01"))
    assert finding["period"] == "stay/drug"
    assert (
        finding["detail"]["share"] == "0.4000" and finding["detail"]["category_cost"] == "2000.01"
    )
    assert "40%" in finding["text_en"] and "药品" in finding["text_zh"]
    assert case.apply(line("d3", 4, category="drug", item="D", unit_price="900.00")) == []


def test_a_credit_that_raises_another_category_s_share_can_find_it() -> None:
    case = Case(rules({"kind": "category_share", "params": {"shares": {"consumable": "0.60"}}}))
    case.apply(
        admitted(),
        line("p", 2, category="procedure", item="P", unit_price="4000.00"),
        line("c", 2, category="consumable", item="C", unit_price="6000.00"),  # 60%: not above
    )
    assert case.findings == []
    [finding] = case.apply(
        line("p-back", 3, category="procedure", item="P", unit_price="1000.00", kind="credit")
    )
    assert finding["event_id"] == "p-back" and finding["detail"]["share"] == "0.6667"


# --- stay_over_average ------------------------------------------------------------------------


def test_an_open_case_past_its_drg_s_average_stay_is_found_once() -> None:
    case = Case(rules({"kind": "stay_over_average"}))  # D1: average stay 7.5 days
    case.apply(admitted(), *(line(f"bed{d}", d, category="bed", item="B") for d in range(1, 9)))
    assert case.findings == []  # day 8: 7 days in
    [finding] = case.apply(line("bed9", 9, category="bed", item="B"))
    assert finding["period"] == "stay"
    assert finding["detail"]["days"] == 8 and finding["detail"]["avg_los_days"] == "7.5"
    assert "7.5" in finding["text_zh"] and "D1" in finding["text_en"]
    assert case.apply(line("bed10", 10, category="bed", item="B")) == []


def test_a_discharged_case_or_one_without_an_average_stay_is_not_found() -> None:
    case = Case(rules({"kind": "stay_over_average"}))
    case.apply(admitted(), discharged("dis", at(20)), line("late", 21, category="bed", item="B"))
    assert case.findings == []
    unpriced = Case(rules({"kind": "stay_over_average"}))
    unpriced.apply(admitted(drg_code=None), line("late", 21, category="bed", item="B"))
    assert unpriced.findings == []


def test_the_ratio_stretches_the_average() -> None:
    case = Case(rules({"kind": "stay_over_average", "params": {"ratio": "1.5"}}))
    case.apply(admitted(), line("d12", 12, category="bed", item="B"))  # 11 days: not > 11.25
    assert case.findings == []
    [finding] = case.apply(line("d13", 13, category="bed", item="B"))
    assert "beyond 1.5 times the average stay of 7.5 days" in finding["text_en"]
    assert finding["text_zh"].endswith("平均住院日 7.5 天的 1.5 倍")


def test_a_stay_is_found_at_the_first_moment_it_can_be_too_long() -> None:
    # admitted a minute before local midnight: 8 local days later is 7 days and a minute
    late = at(1, 23, 59)
    case = Case(rules({"kind": "stay_over_average"}))
    case.apply(admitted(admitted_at=late, occurred_at=late))
    assert case.apply(line("d8", 8, hour=23, category="bed", item="B")) == []  # 7 days
    [finding] = case.apply(line("d9", 9, hour=0, category="bed", item="B"))
    assert finding["detail"]["days"] == 8


def test_a_corrected_admission_or_another_average_stay_is_looked_at_afresh() -> None:
    case = Case(rules({"kind": "stay_over_average"}))
    case.apply(admitted(admitted_at=at(8), occurred_at=at(8)), line("b1", 9, category="bed"))
    # the admission was a week earlier: the stay is 8 days in, beyond 7.5
    corrected = parse_event(admitted_raw("adm2", admitted_at=at(1), occurred_at=at(9, 11)))
    assert [f["period"] for f in case.apply(corrected)] == ["stay"]
    # a group of a shorter average stay: the same stay is found sooner
    plain = catalogue(groups={"D1": ("1", None), "S": ("1", None)})
    groups = {**plain.groups, "S": replace(plain.groups["S"], avg_los_days=Decimal(2))}
    short = book(replace(plain, groups=groups))
    compiled = CaseRules.compile(rules({"kind": "stay_over_average"}), ZONE)
    state, memory, found = new_case("H1", "C1"), CaseMemory(), []
    events = [admitted(), line("b1", 3, category="bed"), drg_assigned("reg", "S", at(3, 12))]
    events += [line("b2", 4, category="bed")]
    for event in events:
        apply_event(state, event, short, NOW)
        found += evaluate_case(compiled, memory, state, event, NOW)[1]
    assert [(f["event_id"], f["detail"]["avg_los_days"]) for f in found] == [("b2", "2")]


def test_the_memory_s_dict_form_is_always_what_it_holds() -> None:
    # kept between changes: after every event it is what the memory gives afresh
    case = Case(every_rule())
    for event in busy_stay():
        case.apply(event)
        afresh = CaseMemory(items=case.memory.items, fired=case.memory.fired)
        assert case.memory.to_dict() == afresh.to_dict()
    # and through the bounds: old days and stale items dropped, credits taken back
    memory = CaseMemory()
    for day in range(1, 40):
        memory.record("L-CBC", f"2026-03-{min(day, 31):02d}", Decimal(1))
        memory.record(f"L-{day}", "2026-03-10", Decimal(1))
        memory.record("L-CBC", "2026-03-05", Decimal(-1))
        memory.remember(f"r@1/{day}")
        assert memory.to_dict() == CaseMemory(items=memory.items, fired=memory.fired).to_dict()
    for n in range(MAX_TRACKED_ITEMS):
        memory.record(f"M-{n}", "2026-03-11", Decimal(1))
        assert list(memory.to_dict()["items"]) == sorted(memory.items)
    assert len(memory.to_dict()["items"]) == MAX_TRACKED_ITEMS


# --- scoping, versions, replays, memory -------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "found"),
    [
        ({}, True),
        ({"hospitals": ["H1"]}, True),
        ({"hospitals": ["H2"]}, False),
        ({"departments": ["CARD", "SURG"]}, True),
        ({"departments": ["SURG"]}, False),
        ({"exclude_departments": ["CARD"]}, False),
        ({"enabled": False}, False),
    ],
)
def test_a_rule_applies_to_its_hospitals_and_departments_only(
    scope: dict[str, Any], found: bool
) -> None:
    case = Case(rules({"kind": "repeat_item", **scope}))
    case.apply(admitted(), line("ct1", 2), line("ct2", 3))
    assert bool(case.findings) is found


def test_the_case_s_department_decides_not_the_ordering_one() -> None:
    case = Case(rules({"kind": "repeat_item", "departments": ["CARD"]}))
    case.apply(admitted(), line("ct1", 2, department="RAD"), line("ct2", 3, department="RAD"))
    assert [f["department"] for f in case.findings] == ["CARD"]


def every_rule() -> RuleSet:
    return rules(
        {"kind": "repeat_item"},
        {"kind": "same_day_repeats"},
        {"kind": "order_bound"},
        {"kind": "daily_spike"},
        {"kind": "category_share"},
        {"kind": "stay_over_average"},
    )


def busy_stay() -> list[Event]:
    events = [admitted()]
    for day in range(1, 13):
        events.append(line(f"bed{day}", day, category="bed", item="B", unit_price="120.00"))
        events.append(line(f"cbc{day}", day, category="lab", item="L-CBC", unit_price="25.00"))
        if day % 4 == 0:
            events.append(line(f"ct{day}", day, unit_price="450.00"))
    events += [
        line(f"glu{n}", 6, category="lab", item="L-GLU", unit_price="8.00") for n in range(5)
    ]
    events.append(
        line("stents", 7, category="consumable", item="C-DES", quantity="3", unit_price="12000.00")
    )
    events.append(
        line(
            "stents-back",
            8,
            category="consumable",
            item="C-DES",
            unit_price="12000.00",
            kind="credit",
        )
    )
    return events


def test_replaying_the_same_events_finds_the_same_findings_with_the_same_ids() -> None:
    first, second = Case(every_rule()), Case(every_rule())
    first.apply(*busy_stay())
    second.apply(*busy_stay())
    ids = [f["alert_id"] for f in first.findings]
    assert ids == [f["alert_id"] for f in second.findings]
    assert len(ids) == len(set(ids))
    assert {f["rule_id"] for f in first.findings} == {
        "repeat-item",
        "same-day-repeats",
        "order-bound",
        "daily-spike",
        "category-share",
        "stay-over-average",
    }


def test_the_memory_round_trips_through_json_and_resumes_exactly() -> None:
    events = busy_stay()
    whole = Case(every_rule())
    whole.apply(*events)
    # a worker restarted halfway resumes from the stored state and memory
    halfway = Case(every_rule())
    halfway.apply(*events[:20])
    stored_state = json.loads(json.dumps(halfway.state.to_dict()))
    stored_memory = json.loads(json.dumps(halfway.memory.to_dict()))
    resumed = Case(every_rule(), CaseMemory.from_dict(stored_memory))
    resumed.state = CaseState.from_dict(stored_state)
    resumed.apply(*events[20:])
    assert halfway.findings + resumed.findings == whole.findings
    assert resumed.memory.to_dict() == whole.memory.to_dict()
    assert CaseMemory.from_dict(None) == CaseMemory()


def test_a_new_rule_version_raises_under_a_new_id() -> None:
    old = Case(rules({"kind": "repeat_item"}))
    new = Case(rules({"kind": "repeat_item", "version": 2}))
    for case in (old, new):
        case.apply(admitted(), line("ct1", 2), line("ct2", 3))
    assert old.findings[0]["period"] == new.findings[0]["period"]
    assert old.findings[0]["alert_id"] != new.findings[0]["alert_id"]
    assert new.findings[0]["rule_version"] == 2


def test_the_memory_stays_bounded() -> None:
    memory = CaseMemory()
    for day in range(1, 60):
        memory.record(
            "L-CBC", f"2026-03-{day:02d}" if day < 32 else f"2026-04-{day - 31:02d}", Decimal(1)
        )
    assert len(memory.items["L-CBC"]) == MAX_ITEM_DAYS
    assert min(memory.items["L-CBC"]) == "2026-03-29"  # the oldest went first
    for n in range(MAX_TRACKED_ITEMS + 5):
        memory.record(f"L-{n}", "2026-03-10", Decimal(1))
    assert len(memory.items) == MAX_TRACKED_ITEMS
    assert "L-CBC" in memory.items  # charged most recently of all: kept
    for n in range(MAX_FIRED + 10):
        memory.remember(f"r@1/{n}")
    assert len(memory.fired) == MAX_FIRED and not memory.raised("r@1/0")
    assert memory.raised(f"r@1/{MAX_FIRED + 9}")


def test_a_late_line_older_than_the_days_kept_is_left_out() -> None:
    case = Case(rules({"kind": "repeat_item"}, {"kind": "same_day_repeats"}))
    cbc = {"item": "L-CBC", "category": "lab"}
    case.apply(admitted(), *(line(f"c{d}", d, **cbc) for d in range(1, 32)))
    case.apply(line("april", 1, month=4, **cbc))
    assert min(case.memory.items["L-CBC"]) == "2026-03-02"
    assert case.apply(line("late", 1, hour=20, **cbc)) == []
    assert min(case.memory.items["L-CBC"]) == "2026-03-02"


def test_a_credit_before_anything_was_charged_waits_on_its_day() -> None:
    memory = CaseMemory()
    memory.record("E", "2026-03-03", Decimal(-1))
    memory.record("E", "2026-03-03", Decimal(1))
    assert memory.to_dict()["items"] == {"E": {"2026-03-03": [1, "0"]}}
    assert memory.items["E"]["2026-03-03"].times == 0


def test_every_case_rule_over_a_long_stay_runs_as_a_smoke_check() -> None:
    # not timed (speed is measured by `drgwatch bench`): a stay of 2,000 cost lines runs
    # through every case rule, and the memory stays small
    case = Case(every_rule())
    case.apply(admitted())
    events = [
        line(f"e{n}", 1 + n % 28, category=("lab", "exam", "drug", "bed")[n % 4], item=f"I{n % 40}")
        for n in range(2000)
    ]
    case.apply(*events)
    assert case.state.events_applied == 2001
    assert len(json.dumps(case.memory.to_dict())) < 60_000


# --- department rules -------------------------------------------------------------------------

DEPARTMENT_RULES = rules(
    {"kind": "cost_per_case_growth"},
    {"kind": "low_ratio_share"},
    {"kind": "drg_over_standard_months"},
).department_rules
WHEN = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def period(**figures: Any) -> DepartmentPeriod:
    values: dict[str, Any] = {
        "hospital_id": "H1",
        "department": "CARD",
        "period": "2026-11",
        "cases": 10,
        "cost_per_case": Decimal("11500.00"),
    }
    return DepartmentPeriod(**{**values, **figures})


def test_cost_per_case_up_more_than_15_percent_on_last_year_is_found() -> None:
    [finding] = evaluate_department(
        DEPARTMENT_RULES, period(last_year_cost_per_case=Decimal("9999.00")), {}, WHEN
    )
    assert finding["rule_id"] == "cost-per-case-growth" and finding["case_id"] == ""
    assert finding["detail"]["baseline"] == "same_period_last_year"
    assert finding["detail"]["growth"] == "0.1501"
    assert "去年同期" in finding["text_zh"] and "the same period last year" in finding["text_en"]
    exactly = period(last_year_cost_per_case=Decimal("10000.00"))
    assert evaluate_department(DEPARTMENT_RULES, exactly, {}, WHEN) == []


def test_without_last_year_the_previous_period_is_the_baseline_and_it_says_so() -> None:
    figures = period(previous_cost_per_case=Decimal("9000.00"))
    [finding] = evaluate_department(DEPARTMENT_RULES, figures, {}, WHEN)
    assert finding["detail"]["baseline"] == "previous_period"
    assert "no history of last year" in finding["text_en"]
    # last year, where known, wins over the previous period
    both = period(last_year_cost_per_case=Decimal("11000.00"), previous_cost_per_case=Decimal("1"))
    assert evaluate_department(DEPARTMENT_RULES, both, {}, WHEN) == []
    few = period(cases=4, previous_cost_per_case=Decimal("9000.00"))
    assert evaluate_department(DEPARTMENT_RULES, few, {}, WHEN) == []


@pytest.mark.parametrize(("low", "found"), [(2, False), (3, True)])
def test_low_ratio_cases_above_20_percent_are_found(low: int, found: bool) -> None:
    findings = evaluate_department(DEPARTMENT_RULES, period(low_ratio_cases=low), {}, WHEN)
    assert [f["rule_id"] for f in findings] == (["low-ratio-share"] if found else [])
    if found:
        assert findings[0]["detail"]["share"] == "0.3000" and "30%" in findings[0]["text_en"]


def month(name: str, cost: str, standard: str = "10000.00", cases: int = 2) -> DrgMonth:
    return DrgMonth(name, cases, Decimal(cost), Decimal(standard))


def test_a_drg_over_its_standard_three_months_running_is_found() -> None:
    over = [month("2025-11", "10000.01"), month("2025-12", "12000"), month("2026-01", "15000")]
    [finding] = evaluate_department(DEPARTMENT_RULES, period(), {"FM15": over}, WHEN)
    assert finding["drg_code"] == "FM15" and finding["period"] == "2026-01/FM15"
    assert [m["ratio"] for m in finding["detail"]["months"]] == ["1.0000", "1.2000", "1.5000"]
    assert "FM15" in finding["text_zh"] and "3 months running" in finding["text_en"]


@pytest.mark.parametrize(
    "months",
    [
        [month("2026-08", "12000"), month("2026-09", "10000.00"), month("2026-10", "12000")],
        [month("2026-07", "12000"), month("2026-09", "12000"), month("2026-10", "12000")],
        [month("2026-09", "12000"), month("2026-10", "12000")],
        [month("2026-08", "12000"), month("2026-09", "12000", cases=0), month("2026-10", "12000")],
    ],
    ids=["one month at the standard", "a gap", "two months only", "a month without cases"],
)
def test_a_broken_run_is_not_found(months: list[DrgMonth]) -> None:
    assert evaluate_department(DEPARTMENT_RULES, period(), {"FM15": months}, WHEN) == []


def test_a_run_needs_min_cases_in_every_month() -> None:
    at_least_3 = rules({"kind": "drg_over_standard_months", "params": {"min_cases": 3}})
    over = [month("2026-08", "36000", "30000.00", 3), month("2026-09", "24000", "20000.00", 2)]
    over.append(month("2026-10", "36000", "30000.00", 3))
    assert evaluate_department(at_least_3.department_rules, period(), {"FM15": over}, WHEN) == []
    over[1] = month("2026-09", "36000", "30000.00", 3)
    [finding] = evaluate_department(at_least_3.department_rules, period(), {"FM15": over}, WHEN)
    assert finding["detail"]["months"][1]["cases"] == 3


def test_department_findings_keep_their_ids_and_respect_scope() -> None:
    figures = period(low_ratio_cases=5)
    first = evaluate_department(DEPARTMENT_RULES, figures, {}, WHEN)
    again = evaluate_department(DEPARTMENT_RULES, figures, {}, datetime(2026, 12, 2, tzinfo=UTC))
    assert [f["alert_id"] for f in first] == [f["alert_id"] for f in again]
    elsewhere = rules({"kind": "low_ratio_share", "exclude_departments": ["CARD"]}).department_rules
    assert evaluate_department(elsewhere, figures, {}, WHEN) == []
