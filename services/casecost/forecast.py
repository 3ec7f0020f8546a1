"""Where a case lands if proposed items are ordered: pure what-if arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from services.casecost.pricing import CaseLevel, Thresholds, ratio_of

CENT = Decimal("0.01")


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
