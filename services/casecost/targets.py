"""Department targets against what the period has brought so far: periods, the share of a
period elapsed, the projection to its end, and the pace of each measure.

A target is set for a year (`2026`) or a month (`2026-12`) on three measures: cases
(a volume to reach), cost per case and total cost (ceilings: the share of the insurance
budget a department is given). The projection is linear: what the elapsed local days
of the period brought, scaled to all its days. The pace of each measure:
- cases: `behind` when the projection falls short of the target by more than 5%,
  `ahead` when it passes it by more than 5%, `on_track` between;
- total cost: `over` when the projection passes the target, `on_track` otherwise;
- cost per case: `over` when the cost per case so far passes the target, `on_track`
  otherwise.
A month without a target of its own is measured against its year's: one twelfth of the
year's cases and total cost (cases rounded half up), the year's cost per case.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from services.casecost.pricing import CENT, LEVEL_RANK, RATIO_PLACES, AlertLevel, Thresholds

Pace = Literal["on_track", "ahead", "behind", "over"]
PERIOD_PATTERN = r"^[1-9][0-9]{3}(-(0[1-9]|1[0-2]))?$"
PERIOD_RULE = "must be a year (2026) or a month (2026-12)"
PACE_TOLERANCE = Decimal("0.05")
MONTHS = 12


@dataclass(frozen=True, slots=True)
class Period:
    """A year or a month of local days, `first` to `last` inclusive."""

    text: str
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def is_month(self) -> bool:
        return "-" in self.text

    @property
    def year(self) -> str:
        return self.text[:4]


def parse_period(text: str) -> Period:
    """`2026` (a year) or `2026-12` (a month); ValueError otherwise."""
    if not re.match(PERIOD_PATTERN, text):
        raise ValueError(PERIOD_RULE)
    year = int(text[:4])
    if len(text) == 4:
        return Period(text, date(year, 1, 1), date(year, 12, 31))
    month = int(text[5:])
    return Period(
        text, date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    )


def day_start(day: date, zone: tzinfo) -> datetime:
    """The first instant of a local day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def elapsed_days(period: Period, today: date) -> int:
    """The period's local days up to and including today (0 before it, all after it)."""
    if today < period.first:
        return 0
    return (min(today, period.last) - period.first).days + 1


def elapsed_share(period: Period, today: date) -> Decimal:
    """The share of the period's days elapsed, to 4 places."""
    return (Decimal(elapsed_days(period, today)) / period.days).quantize(
        RATIO_PLACES, rounding=ROUND_HALF_UP
    )


@dataclass(frozen=True, slots=True)
class Figures:
    """Cases, cost per case and total cost: a target, what happened, or a projection."""

    cases: int | None
    cost_per_case: Decimal | None
    total_cost: Decimal | None


def month_of_year(yearly: Figures) -> Figures:
    """A month's share of a yearly target."""
    return Figures(
        cases=None
        if yearly.cases is None
        else int((Decimal(yearly.cases) / MONTHS).to_integral_value(rounding=ROUND_HALF_UP)),
        cost_per_case=yearly.cost_per_case,
        total_cost=None
        if yearly.total_cost is None
        else (yearly.total_cost / MONTHS).quantize(CENT, rounding=ROUND_HALF_UP),
    )


def actual(cases: int, total_cost: Decimal) -> Figures:
    """What discharged cases brought: their count, cost per case and total."""
    return Figures(
        cases=cases,
        cost_per_case=None
        if cases == 0
        else (total_cost / cases).quantize(CENT, rounding=ROUND_HALF_UP),
        total_cost=total_cost.quantize(CENT, rounding=ROUND_HALF_UP),
    )


def project(period: Period, today: date, cases: int, total_cost: Decimal) -> Figures | None:
    """The period's end at the pace of its elapsed days (None before it starts)."""
    elapsed = elapsed_days(period, today)
    if elapsed == 0:
        return None
    scale = Decimal(period.days) / elapsed
    return Figures(
        cases=int((cases * scale).to_integral_value(rounding=ROUND_HALF_UP)),
        cost_per_case=actual(cases, total_cost).cost_per_case,
        total_cost=(total_cost * scale).quantize(CENT, rounding=ROUND_HALF_UP),
    )


def _volume_pace(projected: int, target: int) -> Pace:
    low = Decimal(target) * (1 - PACE_TOLERANCE)
    high = Decimal(target) * (1 + PACE_TOLERANCE)
    if projected < low:
        return "behind"
    if projected > high:
        return "ahead"
    return "on_track"


def _ceiling_pace(value: Decimal, target: Decimal) -> Pace:
    return "over" if value > target else "on_track"


def pace(target: Figures, so_far: Figures, projected: Figures | None) -> dict[str, Pace | None]:
    """Each measure's pace against its target (None without a target or a projection)."""
    if projected is None:
        return {"cases": None, "cost_per_case": None, "total_cost": None}
    return {
        "cases": None
        if target.cases is None or projected.cases is None
        else _volume_pace(projected.cases, target.cases),
        "cost_per_case": None
        if target.cost_per_case is None or so_far.cost_per_case is None
        else _ceiling_pace(so_far.cost_per_case, target.cost_per_case),
        "total_cost": None
        if target.total_cost is None or projected.total_cost is None
        else _ceiling_pace(projected.total_cost, target.total_cost),
    }


# --- watching the ceilings: department alerts ----------------------------------------------

WatchedMeasure = Literal["total_cost", "cost_per_case"]
WATCHED_MEASURES: tuple[WatchedMeasure, ...] = ("total_cost", "cost_per_case")


@dataclass(frozen=True, slots=True)
class WatchRules:
    """When a period's figures are steady enough to alert on. The first days of a period
    swing with every discharge (one costly case on the 2nd of a month projects to fifteen
    of them): by default a month is watched from its 7th local day, a year from its 30th,
    and cost per case once the period has discharged 10 cases."""

    month_from_day: int = 7
    year_from_day: int = 30
    min_cases: int = 10


# A level is held until its ratio falls this far below the level's threshold, so that a
# projection moving a little each day does not raise an alert each day.
LEVEL_HOLD = Decimal("0.02")


@dataclass(frozen=True, slots=True)
class Watch:
    """One ceiling measure as the alert sees it: the value so far, the target, and the
    value the level is decided on (the projection for total cost, the value so far for
    cost per case)."""

    measure: WatchedMeasure
    so_far: Decimal
    target: Decimal
    compared: Decimal
    projected: Decimal | None

    @property
    def ratio(self) -> Decimal:
        return (self.compared / self.target).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def watches(
    period: Period, today: date, target: Figures, so_far: Figures, rules: WatchRules
) -> list[Watch]:
    """The ceilings to judge today: those with a positive target, in a period far enough
    along (and, for cost per case, with enough cases) for the figure to mean something."""
    from_day = rules.month_from_day if period.is_month else rules.year_from_day
    if elapsed_days(period, today) < from_day:
        return []
    found: list[Watch] = []
    projected = project(period, today, so_far.cases or 0, so_far.total_cost or Decimal(0))
    if (
        target.total_cost
        and so_far.total_cost is not None
        and projected is not None
        and projected.total_cost is not None
    ):
        found.append(
            Watch(
                "total_cost",
                so_far.total_cost,
                target.total_cost,
                projected.total_cost,
                projected.total_cost,
            )
        )
    if (
        target.cost_per_case
        and so_far.cost_per_case is not None
        and (so_far.cases or 0) >= rules.min_cases
    ):
        found.append(
            Watch(
                "cost_per_case",
                so_far.cost_per_case,
                target.cost_per_case,
                so_far.cost_per_case,
                None,
            )
        )
    return found


def watched_level(watch: Watch, thresholds: Thresholds, previous: AlertLevel) -> AlertLevel:
    """The level of the compared value against the target by the hospital's thresholds
    (compared exactly, as for cases), holding `previous` until the value falls
    `LEVEL_HOLD` x target below that level's threshold."""
    now = thresholds.level_for(watch.compared, watch.target)
    held = thresholds.level_for(watch.compared + LEVEL_HOLD * watch.target, watch.target)
    floor = min(previous, held, key=LEVEL_RANK.__getitem__)
    return max(now, floor, key=LEVEL_RANK.__getitem__)


def transition(previous: AlertLevel, level: AlertLevel) -> str:
    """How a level change reads, as for cases: escalated, de-escalated or resolved."""
    if LEVEL_RANK[level] > LEVEL_RANK[previous]:
        return "escalated"
    return "resolved" if level == "none" else "de-escalated"
