"""The chargemaster (收费目录): what each billable item costs, and which items stand for
one another (an equivalence group: imported and domestic coronary stents, a brand drug
and its generics), as immutable snapshots the pre-check prices with.

A chargemaster is versioned like the DRG catalogue: each import is a new version, valid
from a date, for one hospital or for every hospital (a region's price list); the version
valid on a day for a hospital is found with the same precedence (`ChargeBook.in_force`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType

CENT = Decimal("0.01")


def price_text(price: Decimal) -> str:
    """A unit price as the wire shows it: to the cent, or to as many places as it has
    beyond (6.85, 0.042, 3180.375), whatever places the database kept."""
    text = str(price.normalize())
    if "E" in text or len(text.partition(".")[2]) < 2:
        return str(price.quantize(CENT))
    return text


@dataclass(frozen=True, slots=True)
class ChargeItem:
    item_code: str
    name: str
    category: str  # one of the event contract's categories
    unit_price: Decimal
    equivalence_group: str | None = None
    unit: str | None = None  # what one is: 支, 片, 套 ...
    name_en: str | None = None


@dataclass(frozen=True, slots=True)
class Chargemaster:
    """One version: its items by code, and each equivalence group's items cheapest first."""

    chargemaster_id: int
    name: str
    valid_from: date
    items: Mapping[str, ChargeItem]
    hospital_id: str | None = None  # None: applies to every hospital
    sample: bool = False  # the shipped sample: outranked by any real chargemaster in force
    # worked out from `items`
    groups: Mapping[str, tuple[ChargeItem, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", equivalence_groups(self.items.values()))

    def cheaper_than(self, item_code: str, unit_price: Decimal) -> tuple[ChargeItem, ...]:
        """The other items of `item_code`'s equivalence group priced below `unit_price`,
        cheapest first (then by code); none when the item is in no group."""
        item = self.items.get(item_code)
        if item is None or item.equivalence_group is None:
            return ()
        return tuple(
            other
            for other in self.groups.get(item.equivalence_group, ())
            if other.item_code != item_code and other.unit_price < unit_price
        )


def equivalence_groups(items: Iterable[ChargeItem]) -> Mapping[str, tuple[ChargeItem, ...]]:
    """Items by equivalence group, each group cheapest first, then by code."""
    grouped: dict[str, list[ChargeItem]] = {}
    for item in items:
        if item.equivalence_group is not None:
            grouped.setdefault(item.equivalence_group, []).append(item)
    return MappingProxyType(
        {
            name: tuple(sorted(members, key=lambda i: (i.unit_price, i.item_code)))
            for name, members in grouped.items()
        }
    )


@dataclass(frozen=True, slots=True)
class ChargeBook:
    """Every chargemaster version, as one snapshot; `version` is the newest version's id."""

    version: int = 0
    chargemasters: tuple[Chargemaster, ...] = ()

    def in_force(self, hospital_id: str, on: date) -> Chargemaster | None:
        """The chargemaster valid on `on` for a hospital ("*": the one for every hospital).

        As with DRG catalogues: any real chargemaster valid then outranks the sample; then
        the latest `valid_from`, then one of the hospital's own, then the one stored last.
        """
        best: Chargemaster | None = None
        for chargemaster in self.chargemasters:
            if chargemaster.valid_from > on:
                continue
            if chargemaster.hospital_id not in (None, hospital_id):
                continue
            if best is None or _precedence(chargemaster) > _precedence(best):
                best = chargemaster
        return best

    def category_of(self, hospital_id: str, item_code: str, on: date) -> str | None:
        """`item_code`'s category in the chargemaster in force for the hospital on `on`
        (None: no chargemaster is in force then, or it does not list the item)."""
        chargemaster = self.in_force(hospital_id, on)
        item = chargemaster.items.get(item_code) if chargemaster is not None else None
        return item.category if item is not None else None


def _precedence(chargemaster: Chargemaster) -> tuple[bool, date, bool, int]:
    return (
        not chargemaster.sample,
        chargemaster.valid_from,
        chargemaster.hospital_id is not None,
        chargemaster.chargemaster_id,
    )
