"""The shipped sample chargemaster as a charge book, for the pure mapping tests."""

from __future__ import annotations

from datetime import date
from types import MappingProxyType

from services.casecost.chargemaster import ChargeBook, ChargeItem, Chargemaster
from services.reference.chargemaster.service import sample_chargemaster


def sample_charge_book(valid_from: date | None = None) -> ChargeBook:
    """The sample as the only version, valid from its own date (or from `valid_from`)."""
    sample = sample_chargemaster()
    items = {
        item.item_code: ChargeItem(item.item_code, item.name, item.category, item.unit_price)
        for item in sample.items
    }
    chargemaster = Chargemaster(
        1, sample.name, valid_from or sample.valid_from, MappingProxyType(items), sample=True
    )
    return ChargeBook(1, (chargemaster,))
