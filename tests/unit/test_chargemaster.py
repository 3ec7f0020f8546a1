"""The chargemaster's pure core: which version is valid on a day, cheaper equivalents and
their landings (exact money), unit prices as the wire shows them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import MappingProxyType

import pytest

from services.casecost.alternatives import cheaper_alternatives
from services.casecost.chargemaster import ChargeBook, ChargeItem, Chargemaster, price_text
from services.casecost.forecast import ProposedItem
from services.casecost.pricing import Thresholds

STANDARD = Decimal("40400.83")


def version(
    ident: int,
    valid_from: date,
    prices: dict[str, str],
    *,
    hospital_id: str | None = None,
    sample: bool = False,
) -> Chargemaster:
    items = {
        code: ChargeItem(code, f"item {code}", "consumable", Decimal(price), "G")
        for code, price in prices.items()
    }
    return Chargemaster(
        ident, f"v{ident}", valid_from, MappingProxyType(items), hospital_id, sample
    )


def test_the_version_valid_on_a_day_wins_by_realness_date_scope_then_order() -> None:
    sample = version(1, date(2026, 1, 1), {"A": "1"}, sample=True)
    old = version(2, date(2025, 1, 1), {"A": "2"})
    new = version(3, date(2026, 6, 1), {"A": "3"})
    own = version(4, date(2026, 6, 1), {"A": "4"}, hospital_id="H1")
    again = version(5, date(2026, 6, 1), {"A": "5"})
    book = ChargeBook(5, (sample, old, new, own, again))
    assert book.in_force("H1", date(2024, 12, 31)) is None
    assert book.in_force("H2", date(2025, 12, 31)) is old
    assert book.in_force("H2", date(2026, 3, 1)) is old  # real outranks the sample
    assert book.in_force("H2", date(2026, 6, 1)) is again  # same day: stored last
    assert book.in_force("H1", date(2026, 6, 1)) is own  # the hospital's own
    assert ChargeBook(1, (sample,)).in_force("H1", date(2026, 1, 1)) is sample


def test_cheaper_equivalents_are_the_groups_items_below_the_price_cheapest_first() -> None:
    master = version(1, date(2026, 1, 1), {"IMP": "11800", "DOM": "770", "DOM2": "848"})
    assert [i.item_code for i in master.cheaper_than("IMP", Decimal("11800"))] == [
        "DOM",
        "DOM2",
    ]
    assert [i.item_code for i in master.cheaper_than("DOM2", Decimal("848"))] == ["DOM"]
    assert master.cheaper_than("DOM", Decimal("770")) == ()
    assert master.cheaper_than("UNKNOWN", Decimal("99999")) == ()
    # a price given above the list's: the item's own list price counts as cheaper too
    assert [i.item_code for i in master.cheaper_than("DOM", Decimal("800"))] == []
    assert [i.item_code for i in master.cheaper_than("DOM2", Decimal("900"))] == ["DOM"]


def test_each_alternative_lands_the_case_with_the_other_items_kept() -> None:
    master = version(1, date(2026, 1, 1), {"X-IMP": "3500.00", "X-DOM": "3180.375"})
    items = [
        ProposedItem("X-IMP", Decimal("2"), Decimal("3500.00")),
        ProposedItem("LAB", Decimal("3"), Decimal("0.333")),  # 0.999 -> 1.00
    ]
    found = cheaper_alternatives(
        total=Decimal("29999.00"),
        standard=STANDARD,
        thresholds=Thresholds(),
        items=items,
        chargemaster=master,
    )
    assert found[1] == []
    (alternative,) = found[0]
    # 2 x 3180.375 = 6360.75; saving 7000.00 - 6360.75
    assert alternative.saving == Decimal("639.25")
    assert alternative.landing.total_cost == Decimal("36360.75")
    assert alternative.landing.ratio == Decimal("0.9000")
    assert alternative.landing.level == "blue"
    unpriced = cheaper_alternatives(
        total=Decimal("1"), standard=None, thresholds=Thresholds(), items=items, chargemaster=master
    )
    assert unpriced[0][0].landing.level == "unpriced" and unpriced[0][0].landing.ratio is None
    nothing = cheaper_alternatives(
        total=Decimal("1"),
        standard=STANDARD,
        thresholds=Thresholds(),
        items=items,
        chargemaster=None,
    )
    assert nothing == [[], []]


@pytest.mark.parametrize(
    ("price", "text"),
    [
        ("11800.0000", "11800.00"),
        ("6.8500", "6.85"),
        ("0.0420", "0.042"),
        ("5", "5.00"),
        ("3180.375", "3180.375"),
        ("1E+3", "1000.00"),
    ],
)
def test_unit_prices_read_alike_from_every_database(price: str, text: str) -> None:
    assert price_text(Decimal(price)) == text
