"""Pure what-if arithmetic: where a case lands if proposed items are ordered, and where an
open case is expected to stand at discharge at its own pace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from services.casecost.pricing import CaseLevel, Thresholds, ratio_of

CENT = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ProposedItem:
    item_code: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Landing:
    total_cost: Decimal
    ratio: Decimal | None
    level: CaseLevel


@dataclass(frozen=True, slots=True)
class Forecast:
    added_cost: Decimal
    current: Landing
    projected: Landing
    # money left before each level is reached, from the projected total (None: unpriced)
    headroom: dict[str, Decimal] | None


def landing(total: Decimal, standard: Decimal | None, thresholds: Thresholds) -> Landing:
    if standard is None:
        return Landing(total, None, "unpriced")
    return Landing(total, ratio_of(total, standard), thresholds.level_for(total, standard))


def forecast(
    total: Decimal, standard: Decimal | None, thresholds: Thresholds, items: list[ProposedItem]
) -> Forecast:
    added = sum((item.amount for item in items), Decimal(0))
    projected_total = total + added
    headroom = None
    if standard is not None:
        # the least money, to the cent, that reaches each level: blue and yellow are reached
        # at their line (the next cent up when it falls between two), red only above it
        headroom = {
            "blue": _up_to_cent(thresholds.blue * standard - projected_total),
            "yellow": _up_to_cent(thresholds.yellow * standard - projected_total),
            "red": (thresholds.red * standard - projected_total).quantize(
                CENT, rounding=ROUND_FLOOR
            )
            + CENT,
        }
        headroom = {level: max(Decimal("0.00"), amount) for level, amount in headroom.items()}
    return Forecast(
        added_cost=added,
        current=landing(total, standard, thresholds),
        projected=landing(projected_total, standard, thresholds),
        headroom=headroom,
    )


def _up_to_cent(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_CEILING)


# --- the projection to discharge ----------------------------------------------------------

# categories whose cost is a one-off (the operation, the implant, the devices it uses),
# counted in the total but never taken as the pace of the days that follow
ONE_OFF_CATEGORIES = frozenset({"procedure", "consumable"})


class Projection(NamedTuple):
    """Where an open case is expected to stand at discharge (see `project_to_discharge`).

    A named tuple: one is made for every event applied, and a frozen dataclass costs
    several times as much to build."""

    total: Decimal
    days_observed: int
    remaining_days: Decimal
    run_rate: Decimal
    # whole local days from admission to the latest event (0 on the day of admission)
    full_days: int


def project_to_discharge(
    *,
    total: Decimal,
    standard: Decimal | None,
    avg_los_days: Decimal | None,
    admission_day: date | None,
    latest_day: date | None,
    one_off: Decimal,
    discharged: bool,
) -> Projection | None:
    """The case's cost at discharge: cost so far plus its daily run-rate over the days left.

    The clock is the case's own, never the wall: `latest_day` is the local day of its
    latest event, so replaying the same events gives the same projection on any day.

    - days observed = local calendar days from the day of admission through the latest
      event's day, both counted (the costs so far were posted on those days);
    - run-rate = (total - `one_off`, the case's procedures and consumables so far) / days
      observed, never below zero: an operation and its implant are paid once, whichever
      day they fall on, and are not a pace the days that follow will repeat;
    - remaining days = the DRG's average stay - days observed, never below zero;
    - projected total = total + run-rate x remaining days, half-up to the cent.

    Counting the latest day as observed keeps the early days honest: on the second day a
    stay has two days of charges, and dividing them by one day would double its pace.
    None without a standard, an average stay or an admission day; a discharged case is
    projected at what it cost.
    """
    if standard is None or avg_los_days is None or admission_day is None:
        return None
    latest = latest_day or admission_day
    full_days = max(0, (latest - admission_day).days)
    days_observed = full_days + 1
    if discharged:
        return Projection(total, days_observed, ZERO, ZERO, full_days)
    run_rate = max(ZERO, total - one_off) / days_observed
    remaining_days = max(ZERO, avg_los_days - days_observed)
    if remaining_days:
        projected = (total + run_rate * remaining_days).quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        projected = total
    return Projection(projected, days_observed, remaining_days, run_rate, full_days)
