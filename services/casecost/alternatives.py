"""Cheaper equivalents of proposed items, and where the case would land with each.

Pure: the chargemaster in force is passed in. For each proposed item in an equivalence
group, every other item of the group priced below it is an alternative, cheapest first.
An alternative replaces that one item at the same quantity, the other proposed items
kept; its saving is the item's amount less the alternative's (each to the cent, as a
charge would be posted), and its landing is where the case's total would then stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.casecost.chargemaster import ChargeItem, Chargemaster
from services.casecost.forecast import Landing, ProposedItem, landing
from services.casecost.pricing import Thresholds


@dataclass(frozen=True, slots=True)
class Alternative:
    item: ChargeItem
    saving: Decimal  # the proposed item's amount less this one's, at the same quantity
    landing: Landing  # the case with this item in place of the proposed one


def cheaper_alternatives(
    *,
    total: Decimal,
    standard: Decimal | None,
    thresholds: Thresholds,
    items: Sequence[ProposedItem],
    chargemaster: Chargemaster | None,
) -> list[list[Alternative]]:
    """For each proposed item (in order), its cheaper equivalents; an empty list for an
    item in no group, with none cheaper, or without a chargemaster in force."""
    projected = total + sum((item.amount for item in items), Decimal(0))
    found: list[list[Alternative]] = []
    for item in items:
        options = (
            ()
            if chargemaster is None
            else chargemaster.cheaper_than(item.item_code, item.unit_price)
        )
        alternatives = []
        for option in options:
            saving = (
                item.amount
                - ProposedItem(option.item_code, item.quantity, option.unit_price).amount
            )
            alternatives.append(
                Alternative(option, saving, landing(projected - saving, standard, thresholds))
            )
        found.append(alternatives)
    return found
