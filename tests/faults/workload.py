"""A generated hospital stream for the fault-injection suite, and its independent recount.

`generate(seed, hospital_id)` builds a few hundred inpatient cases and the order in
which hospital systems post their events: admissions (some after the first charges),
charges and partial credits, regroups (some dated before the DRG they would replace,
so they must not win), transfers, discharges with late charges after them, backdated
lines, exact duplicates and a few invalid lines that ingest must refuse.

`recount(workload)` computes, without any drgwatch code, what every case must end as
and which alerts must have been raised: the events of each case taken in the order
they were posted (the order ingest acknowledges them in), duplicates and refused
events left out, money in `Decimal`, levels by the documented default thresholds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
LOCAL = timezone(timedelta(hours=8))
CATALOGUE_EFFECTIVE_FROM = "2026-01-01"
BASE_RATES = {"employee": Decimal("10000.00"), "resident": Decimal("8000.00")}
# drg_code -> (weight, explicit standard or None)
GROUPS: dict[str, tuple[Decimal, Decimal | None]] = {
    "FX11": (Decimal("1.5000"), None),
    "FX12": (Decimal("2.2500"), None),
    "FX13": (Decimal("3.0000"), Decimal("30000.00")),
    "FX14": (Decimal("0.8765"), None),
    "FX15": (Decimal("3.3333"), None),
}
# one in ten is self-pay, which has no base rate: unpriced unless the group has a standard
SCHEMES = ["employee"] * 5 + ["resident"] * 4 + ["selfpay"]
DEPARTMENTS = ["CARD", "ORTHO", "NEURO", "ICU", "GSURG"]
CATEGORIES = ["drug", "consumable", "exam", "lab", "procedure", "bed", "nursing", "other"]
QUANTITIES = ["1", "1", "1", "2", "3", "0.5", "1.5", "10"]
LEVEL_RANK = {"none": 0, "blue": 1, "yellow": 2, "red": 3}


def catalogue_body(hospital_id: str) -> dict[str, Any]:
    """The hospital's own catalogue, posted before the stream (wins over the sample)."""
    return {
        "name": f"fault-suite {hospital_id}",
        "effective_from": CATALOGUE_EFFECTIVE_FROM,
        "hospital_id": hospital_id,
        "base_rates": {scheme: str(rate) for scheme, rate in BASE_RATES.items()},
        "groups": [
            {
                "drg_code": code,
                "name": f"Fault suite group {code}",
                "weight": str(weight),
                **({"standard_cost": str(explicit)} if explicit is not None else {}),
            }
            for code, (weight, explicit) in GROUPS.items()
        ],
    }


def standard_of(drg_code: str | None, scheme: str | None) -> Decimal | None:
    """weight x base rate of the scheme, half-up to the cent, or the explicit standard."""
    if drg_code not in GROUPS:
        return None
    weight, explicit = GROUPS[drg_code]
    if explicit is not None:
        return explicit
    if scheme not in BASE_RATES:
        return None
    return (weight * BASE_RATES[scheme]).quantize(CENT, rounding=ROUND_HALF_UP)


def level_of(total: Decimal, standard: Decimal) -> str:
    """Default thresholds: blue >= 90%, yellow >= 95%, red > 100%."""
    if total > standard:
        return "red"
    if total >= Decimal("0.95") * standard:
        return "yellow"
    if total >= Decimal("0.90") * standard:
        return "blue"
    return "none"


@dataclass
class Posting:
    """One event as posted: `valid` False for an event ingest must refuse."""

    event: dict[str, Any]
    valid: bool = True
    duplicate: bool = False  # an exact copy of an event posted earlier


@dataclass
class Workload:
    hospital_id: str
    cases: list[str]
    # each poster's batches, in order; a case always belongs to one poster
    batches: list[list[list[Posting]]]

    @property
    def postings(self) -> list[Posting]:
        return [p for poster in self.batches for batch in poster for p in batch]

    @property
    def distinct_valid_events(self) -> int:
        return sum(p.valid and not p.duplicate for p in self.postings)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(LOCAL).isoformat()


class _CaseScript:
    """The events of one case, in the order its hospital systems post them."""

    def __init__(self, rng: random.Random, hospital_id: str, case_id: str, size: int) -> None:
        self.rng = rng
        self.hospital_id = hospital_id
        self.case_id = case_id
        self.serial = 0
        self.clock = datetime(2026, 10, 1, 8, tzinfo=UTC) + timedelta(
            minutes=rng.randrange(0, 60 * 24 * 40)
        )
        self.postings: list[Posting] = []
        self.charges: list[dict[str, Any]] = []
        self._write(size)

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{self.case_id}-{prefix}{self.serial}"

    def _tick(self) -> datetime:
        self.clock += timedelta(minutes=self.rng.randrange(1, 240), seconds=self.rng.randrange(60))
        return self.clock

    def _base(self, kind: str, prefix: str, moment: datetime) -> dict[str, Any]:
        return {
            "event_id": self._id(prefix),
            "type": kind,
            "hospital_id": self.hospital_id,
            "case_id": self.case_id,
            "occurred_at": _stamp(moment),
        }

    def _line(self, moment: datetime, budget_share: Decimal) -> dict[str, Any]:
        quantity = Decimal(self.rng.choice(QUANTITIES))
        places = self.rng.choice([2, 2, 3, 4])
        target = max(budget_share / quantity, Decimal("0.01"))
        unit_price = (target * Decimal(self.rng.uniform(0.3, 1.7))).quantize(
            Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP
        )
        unit_price = max(unit_price, Decimal("0.01"))
        code = f"IT{self.rng.randrange(40):03d}"
        return {
            **self._base("charge", "c", moment),
            "department": self.department,
            "item_code": code,
            "item_name": f"Item {code}",
            "category": self.rng.choice(CATEGORIES),
            "quantity": str(quantity),
            "unit_price": str(unit_price),
            "amount": str((quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)),
            "order_id": f"O{self.serial}",
        }

    def _write(self, size: int) -> None:
        rng = self.rng
        self.department = rng.choice(DEPARTMENTS)
        drg = rng.choice(list(GROUPS))
        scheme = rng.choice(SCHEMES)
        admitted_at = self._tick()
        admission = {
            **self._base("admitted", "a", admitted_at),
            "department": self.department,
            "insurance_scheme": scheme,
            "admitted_at": _stamp(admitted_at),
        }
        if rng.random() < 0.85:
            admission["drg_code"] = drg
        standard = standard_of(drg, scheme) or Decimal("20000.00")
        # where this case should end, as a share of its standard: many cross a level
        ratio = Decimal(str(round(rng.uniform(0.55, 1.30), 3)))
        per_line = standard * ratio / size
        admit_after = rng.randrange(1, 5) if rng.random() < 0.2 else 0  # charge before admission
        if admit_after == 0:
            self.postings.append(Posting(admission))
        regroup_at = rng.randrange(size) if rng.random() < 0.35 else -1
        transfer_at = rng.randrange(size) if rng.random() < 0.25 else -1
        for n in range(size):
            if n == admit_after and admit_after:
                self.postings.append(Posting(admission))
            moment = self._tick()
            if rng.random() < 0.08:
                moment -= timedelta(hours=rng.randrange(1, 72))  # backdated line, posted late
            line = self._line(moment, per_line)
            self.postings.append(Posting(line))
            self.charges.append(line)
            if n == regroup_at:
                self._regroup(admission, late=rng.random() < 0.3)
            if n == transfer_at:
                self.department = rng.choice(DEPARTMENTS)
                self.postings.append(
                    Posting(
                        {
                            **self._base("transferred", "t", self._tick()),
                            "department": self.department,
                        }
                    )
                )
            if self.charges and rng.random() < 0.07:
                self.postings.append(Posting(self._credit(rng.choice(self.charges))))
            if rng.random() < 0.006:
                self.postings.append(Posting(self._invalid(line), valid=False))
        if "drg_code" not in admission:
            self._regroup(admission, late=False)
        if rng.random() < 0.4:
            discharged_at = self._tick()
            self.postings.append(
                Posting(
                    {
                        **self._base("discharged", "d", discharged_at),
                        "discharged_at": _stamp(discharged_at),
                    }
                )
            )
            for _ in range(rng.randrange(0, 3)):  # charges coded after discharge
                self.postings.append(
                    Posting(self._line(discharged_at - timedelta(hours=2), per_line))
                )

    def _regroup(self, admission: dict[str, Any], *, late: bool) -> None:
        moment = self._tick()
        if late:
            # dated before the admission: it loses to the admission's DRG, if it has one
            moment = datetime.fromisoformat(admission["occurred_at"]) - timedelta(hours=1)
        self.postings.append(
            Posting(
                {
                    **self._base("drg_assigned", "g", moment),
                    "drg_code": self.rng.choice(list(GROUPS)),
                }
            )
        )

    def _credit(self, charge: dict[str, Any]) -> dict[str, Any]:
        quantity = Decimal(charge["quantity"])
        if self.rng.random() < 0.5 and quantity > 1:
            quantity = Decimal(1)
        unit_price = Decimal(charge["unit_price"])
        return {
            **charge,
            **self._base("credit", "r", self._tick()),
            "quantity": str(quantity),
            "amount": str((quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)),
            "reverses_event_id": charge["event_id"],
        }

    def _invalid(self, line: dict[str, Any]) -> dict[str, Any]:
        broken = {**line, "event_id": self._id("bad")}
        kind = self.rng.randrange(4)
        if kind == 0:
            broken["amount"] = str(Decimal(line["amount"]) + CENT)  # != quantity x price
        elif kind == 1:
            broken["category"] = "imaging"
        elif kind == 2:
            broken["quantity"] = "-1"
        else:  # an event id used before, for different content
            broken["event_id"] = line["event_id"]
            broken["amount"] = str(Decimal(line["amount"]) * 2)
            broken["unit_price"] = str(Decimal(line["unit_price"]) * 2)
        return broken


def generate(
    seed: int,
    hospital_id: str,
    *,
    cases: int = 300,
    lines_per_case: tuple[int, int] = (45, 85),
    posters: int = 4,
) -> Workload:
    """Cases, their postings merged into one random arrival order, split among posters."""
    rng = random.Random(seed)
    case_ids = [f"C{n:04d}" for n in range(cases)]
    scripts = [
        _CaseScript(rng, hospital_id, case_id, rng.randrange(*lines_per_case))
        for case_id in case_ids
    ]
    # exact duplicates, re-posted a little later in the same case's order
    for script in scripts:
        postings = script.postings
        for _ in range(max(1, len(postings) // 30)):
            original = rng.choice([p for p in postings if p.valid])
            position = rng.randrange(postings.index(original) + 1, len(postings) + 1)
            postings.insert(position, Posting(dict(original.event), duplicate=True))
    # arrival order: a random merge that keeps each case's own order
    slots = [index for index, script in enumerate(scripts) for _ in script.postings]
    rng.shuffle(slots)
    following = [iter(script.postings) for script in scripts]
    merged = [(index, next(following[index])) for index in slots]
    batches: list[list[list[Posting]]] = []
    for poster in range(posters):
        mine = [posting for index, posting in merged if index % posters == poster]
        poster_batches: list[list[Posting]] = []
        while mine:
            size = min(len(mine), max(1, int(rng.lognormvariate(2.3, 0.8))))
            batch, mine = mine[:size], mine[size:]
            poster_batches.append(batch)
        batches.append(poster_batches)
    return Workload(hospital_id=hospital_id, cases=case_ids, batches=batches)


@dataclass
class ExpectedCase:
    total_cost: Decimal = Decimal(0)
    cost_by_category: dict[str, Decimal] = field(default_factory=dict)
    events_applied: int = 0
    drg_code: str | None = None
    drg_stamp: tuple[datetime, str] | None = None
    scheme: str | None = None
    scheme_stamp: tuple[datetime, str] | None = None
    discharged: bool = False
    standard_cost: Decimal | None = None
    level: str = "unpriced"
    alert_level: str = "none"


@dataclass(frozen=True)
class ExpectedAlert:
    case_id: str
    previous_level: str
    level: str
    transition: str
    total_cost: Decimal
    standard_cost: Decimal
    event_id: str


def recount(workload: Workload) -> tuple[dict[str, ExpectedCase], list[ExpectedAlert]]:
    """Fold each case's accepted events in posting order, with no drgwatch code."""
    cases: dict[str, ExpectedCase] = {case_id: ExpectedCase() for case_id in workload.cases}
    alerts: list[ExpectedAlert] = []
    seen: set[str] = set()
    for poster in workload.batches:
        for batch in poster:
            for posting in batch:
                event = posting.event
                if not posting.valid or event["event_id"] in seen:
                    continue
                seen.add(event["event_id"])
                case = cases[event["case_id"]]
                _fold(case, event)
                alert = _level_change(case, event)
                if alert is not None:
                    alerts.append(alert)
    return cases, alerts


def _fold(case: ExpectedCase, event: dict[str, Any]) -> None:
    case.events_applied += 1
    stamp = (datetime.fromisoformat(event["occurred_at"]), event["event_id"])
    kind = event["type"]
    if kind in ("charge", "credit"):
        amount = Decimal(event["amount"]) * (1 if kind == "charge" else -1)
        case.total_cost += amount
        category = event["category"]
        case.cost_by_category[category] = case.cost_by_category.get(category, Decimal(0)) + amount
    elif kind == "admitted":
        if case.scheme_stamp is None or stamp > case.scheme_stamp:
            case.scheme, case.scheme_stamp = event["insurance_scheme"], stamp
        if "drg_code" in event and (case.drg_stamp is None or stamp > case.drg_stamp):
            case.drg_code, case.drg_stamp = event["drg_code"], stamp
    elif kind == "drg_assigned":
        if case.drg_stamp is None or stamp > case.drg_stamp:
            case.drg_code, case.drg_stamp = event["drg_code"], stamp
    elif kind == "discharged":
        case.discharged = True


def _level_change(case: ExpectedCase, event: dict[str, Any]) -> ExpectedAlert | None:
    case.standard_cost = standard_of(case.drg_code, case.scheme)
    if case.standard_cost is None:
        case.level = "unpriced"
        return None
    case.level = level_of(case.total_cost, case.standard_cost)
    if case.level == case.alert_level:
        return None
    previous, case.alert_level = case.alert_level, case.level
    if case.level == "none":
        transition = "resolved"
    elif LEVEL_RANK[case.level] > LEVEL_RANK[previous]:
        transition = "escalated"
    else:
        transition = "de-escalated"
    return ExpectedAlert(
        case_id=event["case_id"],
        previous_level=previous,
        level=case.level,
        transition=transition,
        total_cost=case.total_cost,
        standard_cost=case.standard_cost,
        event_id=event["event_id"],
    )
