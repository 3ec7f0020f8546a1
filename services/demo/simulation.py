"""The simulated hospital's cases and their events: pure, deterministic for a seed.

A run plans admissions day by day for every department (Poisson arrivals that keep its
beds about 85% occupied, fewer elective admissions at weekends), gives each case a DRG
from its department's case mix, a length of stay drawn around the DRG's average stay
(log-normal: right-skewed, at least one day) and a cost target around its payment
standard, and then writes the stay out as events: the admission, daily beds, nursing,
drugs, labs, exams and treatments, the operation and its consumables on the operation
day, a returned drug, a regroup or a transfer now and then, and the discharge.

Times here are simulated times. Up to the run's anchor (the moment the run starts) they
are real: that is the history. After it, `Timeline` maps them onto the real clock at a
faster pace, so the live part of a run shows a day's work in minutes and no event is
ever dated after the moment it is posted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from services.casecost.events import TIMESTAMP_FIELDS
from services.casecost.pricing import DrgGroup
from services.demo.hospital import (
    ALTERNATIVES,
    COMPANIONS,
    DEPARTMENTS,
    ITEMS,
    PATHWAYS,
    TRANSFERS,
    Department,
    Doctor,
    Pathway,
)

Choice = TypeVar("Choice")
CENT = Decimal("0.01")
OCCUPANCY = 0.85
SEVERITY_MIX = (("5", 0.58), ("3", 0.31), ("1", 0.11))
SCHEME_MIX = (("employee", 0.62), ("resident", 0.38))
LOS_SPREAD = 0.42  # sigma of log(length of stay)
COST_MEDIAN = 0.98  # of the standard, before the length of stay is taken into account
COST_SPREAD = 0.12  # sigma of log(cost ratio)
LOS_ELASTICITY = 0.2  # a stay 10% longer than the DRG's average costs about 2% more
LOW_RATIO_SHARE = 0.03  # left early, the operation cancelled: cost < 0.4 x standard
HIGH_RATIO_SHARE = 0.015  # complications, intensive care: cost > 2 x standard
UNGROUPED_SHARE = 0.12  # admitted without a working DRG, grouped within the day
REGROUP_SHARE = 0.06  # severity coded again during the stay
TRANSFER_SHARE = 0.02
RETURNED_DRUG_SHARE = 0.12
MAX_LOS_DAYS = 60
# ordinary stays end by 1.5 times their DRG's average stay (the shipped stay-over-average
# rule's bound): a longer one is planted (services/demo/plants.py)
LONGEST_STAY = 1.5
LOS_CUT_SHIFT = 0.08
# an exam or lab item this dear is not done again within 3 days (the shipped repeat-exam
# rule's bound); cheaper monitoring labs are done every other day
COSTLY_TEST = Decimal("200")
REPEAT_GAP_DAYS = 3
WARMUP_DAYS = 60  # admissions this long before the history may still be in hospital
ARCHIVE_MONTHS = 3  # the earlier months of discharged stays before the history
ARCHIVE_SERIAL = 900_000  # the first serial of the stays admitted before the warm-up


@dataclass(frozen=True, slots=True)
class CasePlan:
    """One simulated stay, decided up front; `case_events` writes it out."""

    serial: int
    case_id: str
    pathway: Pathway
    drg_code: str
    working_drg: str | None  # the DRG sent with the admission (None: grouped later)
    scheme: str
    standard: Decimal
    avg_los_days: Decimal
    admitted_at: datetime
    los_days: int
    discharged_at: datetime
    target_ratio: float
    doctor: Doctor
    operated: bool
    intensive_days: int
    transfer_day: int | None
    seed: str


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """An event at its simulated time; its time fields are written when it is posted."""

    at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Segment:
    """From `sim_start`, simulated time runs `speed` times as fast as the real clock
    from `real_start`."""

    sim_start: datetime
    real_start: datetime
    speed: float

    def to_real(self, at: datetime) -> datetime:
        return self.real_start + (at - self.sim_start) / self.speed


@dataclass(frozen=True, slots=True)
class Timeline:
    """Simulated time onto the real clock: itself up to the anchor, then each live
    segment of the run (and of every resumption) in turn."""

    anchor: datetime
    segments: tuple[Segment, ...] = ()

    def to_real(self, at: datetime) -> datetime:
        if at <= self.anchor:
            return at
        current = None
        for segment in self.segments:
            if segment.sim_start < at:
                current = segment
        if current is None:
            raise ValueError(f"{at.isoformat()} is after the anchor but in no live segment")
        return current.to_real(at).replace(microsecond=0)

    def stamped(self, event: TimedEvent) -> dict[str, Any]:
        """The event as posted: every time field on the real clock."""
        payload = dict(event.payload)
        for name in TIMESTAMP_FIELDS:
            if name in payload:
                payload[name] = self.to_real(datetime.fromisoformat(payload[name])).isoformat()
        return payload


@dataclass(frozen=True, slots=True)
class Hospital:
    """What a run simulates: one hospital, its seed, its anchor and its catalogue."""

    run_id: str
    seed: int
    anchor: datetime
    zone: tzinfo
    groups: dict[str, DrgGroup]
    base_rates: dict[str, Decimal]
    hospital_id: str = "H001"
    history_days: int = 14
    departments: dict[str, Department] = field(default_factory=lambda: DEPARTMENTS)

    @property
    def anchor_day(self) -> date:
        return self.anchor.astimezone(self.zone).date()

    @property
    def history_start(self) -> datetime:
        day = self.anchor_day - timedelta(days=self.history_days)
        return datetime.combine(day, time(0), self.zone)


def plan_cases(hospital: Hospital, until: datetime) -> list[CasePlan]:
    """Every stay of the run admitted by `until` that is still in hospital at the start
    of its history or later, in order of admission."""
    plans = [
        plan
        for plan in _planned(hospital, until, -(hospital.history_days + WARMUP_DAYS))
        if plan.discharged_at >= hospital.history_start
    ]
    plans.sort(key=lambda plan: (plan.admitted_at, plan.serial))
    return plans


def archive_start(hospital: Hospital) -> datetime:
    """Where the earlier months begin: the first day of the third month before the
    anchor's, or the first whole local day within 90 days of the anchor if that is later
    (an event dated further back draws ingest's backdating warning)."""
    month = hospital.anchor_day.replace(day=1)
    for _ in range(ARCHIVE_MONTHS):
        month = (month - timedelta(days=1)).replace(day=1)
    floor = (hospital.anchor - timedelta(days=89)).astimezone(hospital.zone).date()
    return datetime.combine(max(month, floor + timedelta(days=1)), time(0), hospital.zone)


def archive_plans(hospital: Hospital) -> list[CasePlan]:
    """The earlier months: the stays admitted from `archive_start` and discharged before
    the start of the history (the same stays whatever the history holds), in order of
    admission."""
    start = archive_start(hospital)
    first = (start.astimezone(hospital.zone).date() - hospital.anchor_day).days - WARMUP_DAYS
    plans = [
        plan
        for plan in _planned(hospital, hospital.history_start, first)
        if start <= plan.admitted_at and plan.discharged_at < hospital.history_start
    ]
    plans.sort(key=lambda plan: (plan.admitted_at, plan.serial))
    return plans


def _planned(hospital: Hospital, until: datetime, first_day: int) -> list[CasePlan]:
    """The stays admitted from `first_day` (days from the anchor's) up to `until`.

    Serials count from the history's warm-up as they always did; days before it (the
    earlier months) number theirs from ARCHIVE_SERIAL, so a stay has one id and one seed
    however far back the plan starts."""
    warmup = -(hospital.history_days + WARMUP_DAYS)
    last_day = (until.astimezone(hospital.zone).date() - hospital.anchor_day).days
    plans: list[CasePlan] = []
    serial, archive_serial = 0, ARCHIVE_SERIAL
    for offset in range(first_day, last_day + 1):
        day = hospital.anchor_day + timedelta(days=offset)
        for department in hospital.departments.values():
            pathways = [p for p in PATHWAYS if p.department == department.code]
            rng = random.Random(f"{hospital.seed}:arrivals:{department.code}:{offset}")
            expected = OCCUPANCY * department.beds / _mean_stay(hospital, pathways)
            if day.weekday() >= 5:
                expected *= 0.6
            for _ in range(_poisson(rng, expected)):
                if offset < warmup:
                    archive_serial += 1
                    number = archive_serial
                else:
                    serial += 1
                    number = serial
                plan = _plan_case(hospital, number, day, pathways, department)
                if plan.admitted_at <= until:
                    plans.append(plan)
    return plans


def case_events(hospital: Hospital, plan: CasePlan) -> list[TimedEvent]:
    """The stay as events, in the order they happened."""
    return _CaseWriter(hospital, plan).write()


def hospital_events(hospital: Hospital, plans: Iterable[CasePlan]) -> list[TimedEvent]:
    """Every event of these stays in order of time (ties: case, then order of writing)."""
    events = [event for plan in plans for event in case_events(hospital, plan)]
    events.sort(key=lambda event: event.at)
    return events


def _mean_stay(hospital: Hospital, pathways: list[Pathway]) -> float:
    total = sum(p.share for p in pathways)
    mean = 0.0
    for pathway in pathways:
        stays = [
            float(hospital.groups[code].avg_los_days or 7) for code in _drg_codes(hospital, pathway)
        ]
        mean += pathway.share / total * sum(stays) / len(stays)
    return mean


def _poisson(rng: random.Random, expected: float) -> int:
    threshold, count, product = math.exp(-expected), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _weighted(rng: random.Random, choices: Iterable[tuple[Choice, float]]) -> Choice:
    options = list(choices)
    return rng.choices([value for value, _ in options], [weight for _, weight in options])[0]


def _drg_codes(hospital: Hospital, pathway: Pathway) -> list[str]:
    return sorted(
        code
        for code in hospital.groups
        if code.startswith(pathway.adrg) and code[3] in "135" and len(code) == 4
    )


def _plan_case(
    hospital: Hospital, serial: int, day: date, pathways: list[Pathway], department: Department
) -> CasePlan:
    seed = f"{hospital.seed}:case:{serial}"
    rng = random.Random(seed)
    pathway = _weighted(rng, ((p, float(p.share)) for p in pathways))
    codes = _drg_codes(hospital, pathway)
    severity = _weighted(rng, SEVERITY_MIX)
    by_severity = {code[3]: code for code in codes}
    drg_code = by_severity.get(severity) or rng.choice(codes)
    group = hospital.groups[drg_code]
    scheme = _weighted(rng, SCHEME_MIX)
    standard = (group.weight * hospital.base_rates[scheme]).quantize(CENT, ROUND_HALF_UP)
    if group.standard_cost is not None:
        standard = group.standard_cost
    average = float(group.avg_los_days or 7)
    longest = max(1, math.floor(LONGEST_STAY * average))
    outcome = rng.random()
    operated = bool(pathway.operation)
    intensive_days = 0
    if outcome < LOW_RATIO_SHARE:  # left early: no operation, a fraction of the cost
        los = max(1, round(average * rng.uniform(0.08, 0.3)))
        ratio = rng.uniform(0.15, 0.36)
        operated = False
    elif outcome < LOW_RATIO_SHARE + HIGH_RATIO_SHARE:  # complications, intensive care
        los = min(MAX_LOS_DAYS, longest, max(2, round(average * rng.uniform(1.2, 1.5))))
        ratio = rng.uniform(2.3, 3.2)  # the items land a little under their aim
        intensive_days = max(1, round(los * rng.uniform(0.2, 0.45)))
    else:
        # centred a little above the average, so that the cut log-normal's mean is
        # about the average
        mu = math.log(average) - LOS_SPREAD**2 / 2 + LOS_CUT_SHIFT
        stay = rng.lognormvariate(mu, LOS_SPREAD)
        for _ in range(20):  # the log-normal cut at the longest ordinary stay
            if round(stay) <= longest:
                break
            stay = rng.lognormvariate(mu, LOS_SPREAD)
        los = max(1, min(MAX_LOS_DAYS, round(stay), longest))
        ratio = rng.lognormvariate(math.log(COST_MEDIAN), COST_SPREAD)
        ratio *= (los / average) ** LOS_ELASTICITY
        ratio = min(max(ratio, 0.42), 1.95)
    if rng.random() < 0.8:  # most arrive in working hours; the rest at any hour
        minute = rng.randint(8 * 60, 17 * 60 + 30)
    else:
        minute = rng.randint(0, 24 * 60 - 1)
    admitted = datetime.combine(day, time(minute // 60, minute % 60), hospital.zone)
    discharge_minute = rng.randint(9 * 60, 11 * 60 + 45)
    discharged = datetime.combine(
        day + timedelta(days=los),
        time(discharge_minute // 60, discharge_minute % 60),
        hospital.zone,
    )
    working: str | None = drg_code
    draw = rng.random()
    if draw < UNGROUPED_SHARE:
        working = None
    elif draw < UNGROUPED_SHARE + REGROUP_SHARE and los >= 3:
        # a severity whose average stay the stay does not outrun while coded so
        others = [
            code
            for code in codes
            if code != drg_code
            and los <= LONGEST_STAY * float(hospital.groups[code].avg_los_days or 7)
        ]
        working = rng.choice(others) if others else drg_code
    transfer = None
    if rng.random() < TRANSFER_SHARE and los >= 4 and department.code in TRANSFERS:
        transfer = rng.randint(2, los - 1)
    return CasePlan(
        serial=serial,
        case_id=f"ZY{hospital.run_id}-{serial:05d}",
        pathway=pathway,
        drg_code=drg_code,
        working_drg=working,
        scheme=scheme,
        standard=standard,
        avg_los_days=group.avg_los_days or Decimal(7),
        admitted_at=admitted.astimezone(UTC),
        los_days=los,
        discharged_at=discharged.astimezone(UTC),
        target_ratio=ratio,
        doctor=rng.choice(department.doctors),
        operated=operated,
        intensive_days=intensive_days,
        transfer_day=transfer,
        seed=seed,
    )


def _one_of_each(codes: list[str]) -> list[str]:
    """`codes` in order, less any of which an earlier one is an alternative (a second
    P2Y12 inhibitor, a second anticoagulant, ...: see `ALTERNATIVES`)."""
    kept: list[str] = []
    for code in codes:
        if not any(code in group and not group.isdisjoint(kept) for group in ALTERNATIVES):
            kept.append(code)
    return kept


# how much of a category's spending falls on a day of the stay: the day of admission
# (admission labs and imaging), the day after the operation, and any other day (labs
# every third day, imaging rarely after the first days)
def _day_weight(category: str, day: int, operation_day: int) -> float:
    if category == "lab":
        return 3.0 if day == 0 else 2.0 if day == operation_day + 1 else 0.8 * (day % 2 == 0)
    if category == "exam":
        return 3.0 if day == 0 else 1.5 if day == 1 else 1.0 * (day == operation_day + 1)
    if category == "drug":
        return 1.6 if day == operation_day + 1 else 1.0
    if category == "consumable":  # ward consumables are dispensed every other day
        return 1.0 * (day % 2 == 0)
    return 1.0


LINES_PER_DAY = {"lab": 3, "exam": 2}
# what a case in intensive care also gets: albumin, a carbapenem, a vasopressor
RESCUE_DRUGS = ("D-ALBUMIN", "D-MEROPENEM", "D-NOREPINEPHRINE")


class _CaseWriter:
    """Writes one planned stay as events; its random draws come from the plan's seed."""

    def __init__(self, hospital: Hospital, plan: CasePlan) -> None:
        self.hospital = hospital
        self.plan = plan
        self.rng = random.Random(plan.seed + ":events")
        self.events: list[TimedEvent] = []
        self.department = plan.pathway.department
        self.orders: dict[str, str] = {}  # item code -> its standing order's id
        self.reversals: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (credit, charge)
        self.tested: dict[str, int] = {}  # a costly exam or lab item -> its last day (ordinal)

    def write(self) -> list[TimedEvent]:
        plan, rng = self.plan, self.rng
        admitted = plan.admitted_at
        self._event(
            "admitted",
            admitted,
            department=self.department,
            **({"drg_code": plan.working_drg} if plan.working_drg else {}),
            insurance_scheme=plan.scheme,
            admitted_at=admitted.isoformat(),
        )
        if plan.working_drg is None:
            self._event(
                "drg_assigned", admitted + timedelta(minutes=rng.randint(90, 600)),
                drg_code=plan.drg_code,
            )  # fmt: skip
        elif plan.working_drg != plan.drg_code:
            day = rng.randint(1, max(1, plan.los_days - 1))
            self._event("drg_assigned", self._at(day, 14 * 60, 17 * 60), drg_code=plan.drg_code)
        low, high = plan.pathway.operation_day
        operation_day = min(rng.randint(low, high), max(0, plan.los_days - 1))
        operation_day = operation_day if plan.operated else -1
        fixed = self._daily_care(operation_day)
        if plan.operated:
            fixed += self._operation(operation_day)
        target = (plan.standard * Decimal(str(round(plan.target_ratio, 4)))).quantize(CENT)
        self._variable_care(max(Decimal(0), target - fixed), operation_day)
        self._returned_drug()
        self._event("discharged", plan.discharged_at, discharged_at=plan.discharged_at.isoformat())
        self.events.sort(key=lambda event: event.at)
        for number, event in enumerate(self.events, start=1):
            event.payload["event_id"] = f"{plan.case_id}-{number:04d}"
        for credit, charge in self.reversals:
            credit["reverses_event_id"] = charge["event_id"]
        return self.events

    # --- building blocks ------------------------------------------------------------

    def _event(self, kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
        payload = {
            "event_id": "",
            "type": kind,
            "hospital_id": self.hospital.hospital_id,
            "case_id": self.plan.case_id,
            "occurred_at": at.isoformat(),
            **fields,
        }
        self.events.append(TimedEvent(at, payload))
        return payload

    def _at(self, day: int, earliest: int, latest: int) -> datetime:
        """A moment of the stay's `day` between two local minutes of the day, never
        before the admission nor after the discharge."""
        local_day = self.plan.admitted_at.astimezone(self.hospital.zone).date()
        minute = self.rng.randint(earliest, latest)
        moment = datetime.combine(
            local_day + timedelta(days=day), time(minute // 60, minute % 60), self.hospital.zone
        ).astimezone(UTC)
        if day == 0 and moment <= self.plan.admitted_at:
            moment = self.plan.admitted_at + timedelta(minutes=self.rng.randint(10, 120))
        last = self.plan.discharged_at - timedelta(minutes=30)
        return min(moment, last)

    def _department_on(self, day: int) -> str:
        transfer = self.plan.transfer_day
        if transfer is not None and day >= transfer:
            return TRANSFERS[self.plan.pathway.department]
        return self.plan.pathway.department

    def _charge(
        self, code: str, quantity: int, at: datetime, day: int, *, standing: bool
    ) -> Decimal:
        item = ITEMS[code]
        amount = (item.unit_price * quantity).quantize(CENT, ROUND_HALF_UP)
        if standing:  # a standing order is charged every day under one order id
            order_id = self.orders.setdefault(
                code, f"{self.plan.case_id}-Y{len(self.orders) + 1:03d}"
            )
        else:
            order_id = f"{self.plan.case_id}-L{len(self.events) + 1:04d}"
        self._event(
            "charge",
            at,
            department=self._department_on(day),
            item_code=item.code,
            item_name=item.name_zh,
            category=item.category,
            quantity=str(quantity),
            unit_price=str(item.unit_price),
            amount=str(amount),
            ordered_by=self.plan.doctor.staff_id,
            order_id=order_id,
        )
        return amount

    def _daily_care(self, operation_day: int) -> Decimal:
        """Bed, nursing and the consultation fee for every day but the discharge day."""
        plan, spent = self.plan, Decimal(0)
        intensive_from = -1
        if plan.intensive_days:
            # complications set in after the first days (after the operation, if any)
            intensive_from = max(operation_day + 1, round(plan.los_days * 0.3))
        if plan.transfer_day is not None:
            self._event(
                "transferred",
                self._at(plan.transfer_day, 10 * 60, 11 * 60),
                department=TRANSFERS[plan.pathway.department],
            )
        for day in range(plan.los_days):
            at = self._at(day, 0, 30) if day else self._at(0, 0, 0)
            intensive = intensive_from <= day < intensive_from + plan.intensive_days
            if intensive:
                spent += self._charge("B-ICU", 1, at, day, standing=True)
                spent += self._charge("N-SPECIAL", 24, at, day, standing=True)
            else:
                spent += self._charge("B-WARD3", 1, at, day, standing=True)
                recent = day < 3 or 0 <= day - operation_day <= 2
                nursing = "N-LEVEL1" if recent else "N-LEVEL2"
                spent += self._charge(nursing, 1, at, day, standing=True)
            spent += self._charge("O-CONSULT", 1, at, day, standing=True)
        return spent

    def _operation(self, day: int) -> Decimal:
        """The operation's lines, at the time of the operation on its day."""
        rng, spent = self.rng, Decimal(0)
        at = self._at(day, 8 * 60 + 30, 15 * 60)
        for part in self.plan.pathway.operation:
            if rng.random() >= part.probability:
                continue
            code = _weighted(rng, ((code, float(weight)) for code, weight in part.choices))
            quantity = rng.randint(part.low, part.high)
            spent += self._charge(code, quantity, at, day, standing=False)
            if code in COMPANIONS:
                companion = _weighted(rng, ((c, float(w)) for c, w in COMPANIONS[code]))
                spent += self._charge(companion, quantity, at, day, standing=False)
        return spent

    def _variable_care(self, budget: Decimal, operation_day: int) -> None:
        """Drugs, labs, exams, treatments and ward consumables spread over the stay.

        Labs and imaging fall on their days (admission, after the operation, every few
        days); drugs, treatments and ward consumables are standing orders charged every
        day (consumables every other day) in the daily quantity that spends their share.
        What one category cannot spend goes to the drugs."""
        pathway, plan = self.plan.pathway, self.plan
        days = range(plan.los_days)
        hours = {
            "lab": (6 * 60 + 30, 7 * 60 + 45),
            "exam": (9 * 60, 16 * 60),
            "drug": (8 * 60 + 30, 11 * 60),
            "procedure": (10 * 60, 18 * 60),
            "consumable": (8 * 60 + 30, 17 * 60),
        }
        unspent = Decimal(0)
        for category, pool in (("lab", pathway.labs), ("exam", pathway.exams)):
            share = budget * Decimal(str(pathway.mix[category]))
            weights = [_day_weight(category, day, operation_day) for day in days]
            total_weight = sum(weights)
            carried = Decimal(0)
            for day, weight in zip(days, weights, strict=True):
                if not weight:
                    continue
                allowance = share * Decimal(str(weight / total_weight)) + carried
                carried = allowance - self._spend(pool, allowance, day, hours[category])
            unspent += carried
        standing = {"consumable": pathway.consumables, "procedure": pathway.treatments}
        standing_mix = sum(pathway.mix[category] for category in (*standing, "drug"))
        left_by_labs = unspent
        for category, pool in standing.items():
            moved = left_by_labs * Decimal(str(pathway.mix[category] / standing_mix))
            share = budget * Decimal(str(pathway.mix[category])) + moved
            given = [day for day in days if _day_weight(category, day, operation_day)]
            unspent += share - moved - self._standing(pool, share, given, hours[category], 2)
        drugs = pathway.drugs + (RESCUE_DRUGS if plan.intensive_days else ())
        share = budget * Decimal(str(pathway.mix["drug"])) + unspent
        self._standing(drugs, share, list(days), hours["drug"], 3)

    def _standing(
        self,
        pool: tuple[str, ...],
        budget: Decimal,
        days: list[int],
        hours: tuple[int, int],
        size: int,
    ) -> Decimal:
        """Standing orders of `size` items of `pool` (more when those cannot spend
        `budget`), charged on each of `days` in a daily quantity that spends it."""
        if budget <= 0 or not days or not pool:
            return Decimal(0)
        order = _one_of_each(self.rng.sample(pool, len(pool)))
        chosen, rest = order[:size], order[size:]
        daily = budget / len(days)
        rest.sort(key=lambda code: -ITEMS[code].unit_price)
        while (
            rest
            and len(chosen) < size + 2
            and sum(ITEMS[c].unit_price * ITEMS[c].max_per_day for c in chosen) < daily
        ):
            chosen.append(rest.pop(0))
        chosen.sort(key=lambda code: ITEMS[code].unit_price)
        quantities: dict[str, int] = {}
        remaining = daily
        for index, code in enumerate(chosen):
            item = ITEMS[code]
            share = remaining / (len(chosen) - index)
            quantity = min(
                item.max_per_day, int((share / item.unit_price).to_integral_value(ROUND_HALF_UP))
            )
            if quantity:  # an item dearer than its share is left out of the orders
                quantities[code] = quantity
                remaining -= item.unit_price * quantity
        if not quantities:
            # the cheapest item is dearer than a day's share: one unit on as many of the
            # days (spread over them) as the budget pays for, at least one
            code = chosen[0]
            times = int((budget / ITEMS[code].unit_price).to_integral_value(ROUND_HALF_UP))
            times = max(1, min(len(days), times))
            days = [days[index * len(days) // times] for index in range(times)]
            quantities[code] = 1
        spent = Decimal(0)
        for day in days:
            for code, quantity in quantities.items():
                spent += self._charge(code, quantity, self._at(day, *hours), day, standing=True)
        return spent

    def _spend(
        self,
        pool: tuple[str, ...],
        allowance: Decimal,
        day: int,
        hours: tuple[int, int],
    ) -> Decimal:
        """Charge items of `pool` on `day` for up to `allowance`: a few lines (more on
        the day of admission), each as many units as the allowance left pays for, up to
        the item's daily most. A costly item done in the last few days is not done again."""
        rng, spent = self.rng, Decimal(0)
        category = ITEMS[pool[0]].category
        lines = LINES_PER_DAY[category] + (3 if day == 0 else 0)
        for code in rng.sample(pool, len(pool)):
            item = ITEMS[code]
            remaining = allowance - spent
            if item.unit_price > remaining:
                continue
            at = self._at(day, *hours)
            if item.unit_price >= COSTLY_TEST:
                # by the local day it is charged on (a late admission's first tests fall
                # on the next day)
                on = at.astimezone(self.hospital.zone).date().toordinal()
                if on - self.tested.get(code, on - REPEAT_GAP_DAYS - 1) <= REPEAT_GAP_DAYS:
                    continue
                self.tested[code] = on
            quantity = min(item.max_per_day, int(remaining // item.unit_price))
            spent += self._charge(code, quantity, at, day, standing=False)
            lines -= 1
            if not lines:
                break
        return spent

    def _returned_drug(self) -> None:
        """Now and then a drug charged but not given goes back to the pharmacy."""
        if self.rng.random() >= RETURNED_DRUG_SHARE:
            return
        drugs = [
            event
            for event in self.events
            if event.payload["type"] == "charge"
            and event.payload["category"] == "drug"
            and Decimal(event.payload["quantity"]) >= 2
        ]
        if not drugs:
            return
        charge = self.rng.choice(drugs).payload
        returned = min(Decimal(charge["quantity"]), Decimal(self.rng.randint(1, 2)))
        unit_price = Decimal(charge["unit_price"])
        at = min(
            datetime.fromisoformat(charge["occurred_at"])
            + timedelta(hours=self.rng.randint(2, 20)),
            self.plan.discharged_at - timedelta(minutes=20),
        )
        credit = self._event(
            "credit",
            at,
            **{key: charge[key] for key in ("department", "item_code", "item_name", "category")},
            quantity=str(returned),
            unit_price=str(unit_price),
            amount=str((returned * unit_price).quantize(CENT, ROUND_HALF_UP)),
            ordered_by=charge["ordered_by"],
            order_id=charge["order_id"],
        )
        self.reversals.append((credit, charge))  # its id is known once the stay is numbered
