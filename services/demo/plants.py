"""Planted stays: cases written to fire each shipped case rule, and near misses that must not.

The simulated hospital's ordinary stays raise no rule finding (services/demo/simulation.py
keeps them inside the shipped rules' bounds). So that `make demo` shows every case rule
at work, a run also posts these stays, the same in every run whatever its seed (their
dates follow the run's anchor, their ids carry the run id): each `PLANT-...` case says
in its id what it shows. A planted stay is an ordinary respiratory or neurology stay
(beds, nursing, the consultation fee, antibiotics and nebulised treatment every day,
priced as the simulated hospital prices them) with one thing added.

| case id suffix | rule it fires | what it holds |
|----------------|---------------|---------------|
| PLANT-REPEAT-CT | repeat-exam | a chest CT on day 0 and again on day 2 |
| PLANT-REPEAT-CT-AFTER-4-DAYS | none | the chest CT again 4 days later (the bound is 3) |
| PLANT-DAILY-CHEAP-LABS | none | a blood count and a biochemistry panel every day (under 200) |
| PLANT-LARGE-ORDER | large-order | four chest CTs in one order (the bound is 3) |
| PLANT-ORDER-UNDER-BOUND | none | 25 vials of albumin in one order: 9,950 (the bound is 10,000) |
| PLANT-DAILY-SPIKE | daily-spike | a day of head imaging and albumin after 6 quiet days |
| PLANT-SPIKE-EARLY | none | the same day after 3 quiet days (the rule waits for 5) |
| PLANT-DRUG-SHARE | category-share | albumin and meropenem every day: drugs above 90% past 20,000 |
| PLANT-DRUG-SHARE-UNDER | none | drugs at 89.8% of a stay past 20,000 |
| PLANT-LONG-STAY | stay-over-average | 13 days in hospital, a DRG whose average is 8 (bound 12) |
| PLANT-STAY-AT-BOUND | none | 12 days of the same DRG, discharged on the 12th |
| PLANT-SAME-DAY | same-day-repeats | a blood gas charged in 4 lines on one day (the bound is 3) |
| PLANT-SAME-DAY-3 | none | the blood gas in 3 lines on one day |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.demo.hospital import ITEMS
from services.demo.simulation import (
    CasePlan,
    Hospital,
    TimedEvent,
    archive_plans,
    hospital_events,
)

CENT = Decimal("0.01")
# the findings the planted stays raise with the shipped rules: (case id suffix, rule id)
PLANTED_FINDINGS: frozenset[tuple[str, str]] = frozenset(
    {
        ("PLANT-REPEAT-CT", "repeat-exam"),
        ("PLANT-LARGE-ORDER", "large-order"),
        ("PLANT-DAILY-SPIKE", "daily-spike"),
        ("PLANT-DRUG-SHARE", "category-share"),
        ("PLANT-LONG-STAY", "stay-over-average"),
        ("PLANT-SAME-DAY", "same-day-repeats"),
    }
)

# what every planted stay gets each day: a respiratory ward's day
_DAILY_CARE = (("B-WARD3", 1), ("N-LEVEL2", 1), ("O-CONSULT", 1))
_DAILY_TREATMENT = (("P-NEBULISE", 2), ("P-IVDRIP", 2), ("C-IVSET", 2))
_DAILY_DRUGS = (("D-PIPTAZO", 3), ("D-AMBROXOL", 3), ("D-NS250", 4), ("D-MOXIFLOXACIN", 1))
_SPIKE_DAY = (
    ("E-MRI-HEAD", 1, 1),
    ("E-CTA-HEAD", 1, 1),
    ("E-CT-HEAD", 1, 1),
    ("L-BIOCHEM", 1, 1),
    ("L-COAG", 1, 1),
    ("D-ALBUMIN", 2, 1),
)


@dataclass(frozen=True, slots=True)
class _Plant:
    suffix: str
    department: str
    drg_code: str
    admitted_days_ago: int  # local days before the anchor's
    los_days: int  # days from admission to discharge (the discharge after the anchor: live)
    extras: Callable[[int], tuple[tuple[str, int, int], ...]]  # day -> (item, quantity, lines)
    daily_drugs: tuple[tuple[str, int], ...] = _DAILY_DRUGS
    daily_treatment: tuple[tuple[str, int], ...] = _DAILY_TREATMENT


def _on(days: dict[int, tuple[tuple[str, int, int], ...]]) -> Callable[[int], Any]:
    return lambda day: days.get(day, ())


PLANTS: tuple[_Plant, ...] = (
    _Plant("PLANT-REPEAT-CT", "HXNK", "ES35", 10, 8, _on({0: (("E-CT-CHEST", 1, 1),),
                                                          2: (("E-CT-CHEST", 1, 1),)})),
    _Plant("PLANT-REPEAT-CT-AFTER-4-DAYS", "HXNK", "ES35", 11, 8,
           _on({0: (("E-CT-CHEST", 1, 1),), 4: (("E-CT-CHEST", 1, 1),)})),
    _Plant("PLANT-DAILY-CHEAP-LABS", "HXNK", "ES35", 12, 8,
           lambda day: (("L-CBC", 1, 1), ("L-BIOCHEM", 1, 1))),
    _Plant("PLANT-LARGE-ORDER", "HXNK", "ES35", 9, 8, _on({1: (("E-CT-CHEST", 4, 1),)})),
    _Plant("PLANT-ORDER-UNDER-BOUND", "HXNK", "ES33", 13, 9, _on({1: (("D-ALBUMIN", 25, 1),)})),
    _Plant("PLANT-DAILY-SPIKE", "SJNK", "BR25", 10, 9, _on({6: _SPIKE_DAY})),
    _Plant("PLANT-SPIKE-EARLY", "SJNK", "BR25", 11, 9, _on({3: _SPIKE_DAY})),
    _Plant("PLANT-DRUG-SHARE", "HXNK", "ES33", 13, 12, lambda day: (),
           daily_drugs=(*_DAILY_DRUGS, ("D-ALBUMIN", 3), ("D-MEROPENEM", 6))),
    # the day's other charges 152.00 before its drugs 1,339.40: 89.81% at every moment
    _Plant("PLANT-DRUG-SHARE-UNDER", "HXNK", "ES33", 14, 14, lambda day: (),
           daily_drugs=(("D-ALBUMIN", 3), ("D-MEROPENEM", 1), ("D-AMBROXOL", 3), ("D-NS250", 6)),
           daily_treatment=(("P-NEBULISE", 3), ("C-IVSET", 3))),
    _Plant("PLANT-LONG-STAY", "HXNK", "ES35", 14, 14, lambda day: ()),
    _Plant("PLANT-STAY-AT-BOUND", "HXNK", "ES35", 13, 12, lambda day: ()),
    _Plant("PLANT-SAME-DAY", "HXNK", "ES35", 9, 8, _on({1: (("L-ABG", 1, 4),)})),
    _Plant("PLANT-SAME-DAY-3", "HXNK", "ES35", 10, 8, _on({1: (("L-ABG", 1, 3),)})),
)  # fmt: skip


def planted_events(hospital: Hospital) -> list[TimedEvent]:
    """The planted stays' events (those of the departments the hospital simulates), in
    order of time (ties: in order of writing)."""
    events = [
        event
        for plant in PLANTS
        if plant.department in hospital.departments
        for event in _write(hospital, plant)
    ]
    events.sort(key=lambda event: event.at)
    return events


def run_events(hospital: Hospital, plans: Iterable[CasePlan]) -> list[TimedEvent]:
    """What a run posts of its history and live hours: the stays' events (`plans` as
    `plant_departments` leaves them) and the planted stays', in order of time."""
    events = hospital_events(hospital, plans) + planted_events(hospital)
    events.sort(key=lambda event: event.at)
    return events


# the planted departments, in the stays discharged up to the end of the month before the
# anchor's (the earlier months' and the history's): orthopaedics' stays aim 40% under
# their usual cost two months before the anchor's and 80% over it the month after (cost
# per case up on the month before); in the month before the anchor's, half of
# respiratory medicine's leave early at a quarter of their standard (low-ratio share);
# in every month, neurology's cerebral ischaemia without complications aims 45% above
# its usual cost (over its standard three months running)
GROWTH_DEPARTMENT = ("GK", 1.8, 0.6)
LOW_RATIO_DEPARTMENT = ("HXNK", 0.25)
OVER_STANDARD_DRG = ("SJNK", "BR25", 1.45)
# the department findings these raise with the shipped rules: (department, rule id)
PLANTED_DEPARTMENT_FINDINGS: frozenset[tuple[str, str]] = frozenset(
    {
        ("GK", "cost-per-case-growth"),
        ("HXNK", "low-ratio-share"),
        ("SJNK", "drg-over-standard"),
    }
)


def closed_month(hospital: Hospital) -> str:
    """The month before the anchor's ("2026-11"): the last month that has closed."""
    return f"{hospital.anchor_day.replace(day=1) - timedelta(days=1):%Y-%m}"


def plant_departments(hospital: Hospital, plans: Iterable[CasePlan]) -> list[CasePlan]:
    """The stays with the planted departments' changes made to those discharged by the
    end of the month before the anchor's (the earlier months' and the history's alike)."""
    closed = closed_month(hospital)
    first_of_closed = date(int(closed[:4]), int(closed[5:7]), 1)
    before_closed = f"{first_of_closed - timedelta(days=1):%Y-%m}"
    planted: list[CasePlan] = []
    for plan in plans:
        month = f"{plan.discharged_at.astimezone(hospital.zone):%Y-%m}"
        department = plan.pathway.department
        if month > closed:
            planted.append(plan)
            continue
        if department == GROWTH_DEPARTMENT[0] and month == closed:
            plan = replace(plan, target_ratio=plan.target_ratio * GROWTH_DEPARTMENT[1])
        if department == GROWTH_DEPARTMENT[0] and month == before_closed:
            plan = replace(plan, target_ratio=plan.target_ratio * GROWTH_DEPARTMENT[2])
        if department == LOW_RATIO_DEPARTMENT[0] and month == closed and plan.serial % 2 == 0:
            plan = replace(plan, target_ratio=LOW_RATIO_DEPARTMENT[1], operated=False)
        if (department, plan.drg_code) == OVER_STANDARD_DRG[:2]:
            plan = replace(plan, target_ratio=plan.target_ratio * OVER_STANDARD_DRG[2])
        planted.append(plan)
    return planted


def archive_events(hospital: Hospital) -> list[TimedEvent]:
    """The earlier months' discharged stays, planted departments and all, in order of time."""
    return hospital_events(hospital, plant_departments(hospital, archive_plans(hospital)))


def plant_case_id(hospital: Hospital, suffix: str) -> str:
    return f"ZY{hospital.run_id}-{suffix}"


def _write(hospital: Hospital, plant: _Plant) -> list[TimedEvent]:
    case_id = plant_case_id(hospital, plant.suffix)
    first_day = hospital.anchor_day - timedelta(days=plant.admitted_days_ago)
    events: list[TimedEvent] = []

    def local(day: int, hour: int, minute: int = 0) -> datetime:
        on = first_day + timedelta(days=day)
        return datetime.combine(on, time(hour, minute), hospital.zone).astimezone(UTC)

    def event(kind: str, at: datetime, **fields: Any) -> None:
        payload = {
            "event_id": f"{case_id}-{len(events) + 1:04d}",
            "type": kind,
            "hospital_id": hospital.hospital_id,
            "case_id": case_id,
            "occurred_at": at.isoformat(),
            **fields,
        }
        events.append(TimedEvent(at, payload))

    def charge(code: str, quantity: int, at: datetime, order: str) -> None:
        item = ITEMS[code]
        event(
            "charge",
            at,
            department=plant.department,
            item_code=code,
            item_name=item.name_zh,
            category=item.category,
            quantity=str(quantity),
            unit_price=str(item.unit_price),
            amount=str((item.unit_price * quantity).quantize(CENT, ROUND_HALF_UP)),
            ordered_by=f"{plant.department}001",
            order_id=f"{case_id}-{order}",
        )

    admitted = local(0, 9, 30)
    event(
        "admitted",
        admitted,
        department=plant.department,
        drg_code=plant.drg_code,
        insurance_scheme="employee",
        admitted_at=admitted.isoformat(),
    )
    for day in range(plant.los_days):
        # the day's beds and treatment first, its drugs at 10:00, anything more after
        start = local(day, 0, 10) if day else admitted + timedelta(minutes=10)
        for code, quantity in (*_DAILY_CARE, *plant.daily_treatment):
            charge(code, quantity, start, f"Y-{code}")
        for code, quantity in plant.daily_drugs:
            charge(code, quantity, local(day, 10), f"Y-{code}")
        for number, (code, quantity, lines) in enumerate(plant.extras(day)):
            for line in range(lines):
                at = local(day, 11 + 2 * line, 5 * number)
                charge(code, quantity, at, f"L{day:02d}{number}{line}")
    discharged = local(plant.los_days, 10)
    event("discharged", discharged, discharged_at=discharged.isoformat())
    return events
