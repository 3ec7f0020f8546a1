"""The chargemaster's pure core: which version is valid on a day, cheaper equivalents and
their landings (exact money), unit prices as the wire shows them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.casecost.alternatives import cheaper_alternatives
from services.casecost.chargemaster import ChargeBook, ChargeItem, Chargemaster, price_text
from services.casecost.forecast import ProposedItem, forecast
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


def test_an_items_category_is_the_one_in_the_chargemaster_in_force_that_day() -> None:
    drug = ChargeItem("X", "item X", "drug", Decimal("1"))
    later = Chargemaster(2, "v2", date(2026, 6, 1), MappingProxyType({"X": drug}))
    book = ChargeBook(2, (version(1, date(2026, 1, 1), {"A": "1", "X": "2"}), later))
    assert book.category_of("H1", "X", date(2026, 5, 31)) == "consumable"
    assert book.category_of("H1", "X", date(2026, 6, 1)) == "drug"
    assert book.category_of("H1", "A", date(2026, 6, 1)) is None  # not in the one in force
    assert book.category_of("H1", "X", date(2025, 12, 31)) is None  # none in force yet
    assert ChargeBook().category_of("H1", "X", date(2026, 6, 1)) is None


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


prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4)
quantities = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1000"), places=4)


@given(
    group=st.lists(prices, min_size=1, max_size=6, unique=True),
    proposed=st.lists(st.tuples(st.integers(0, 5), quantities), min_size=1, max_size=4),
    total=st.decimals(min_value=Decimal(0), max_value=Decimal("500000"), places=2),
)
def test_an_alternative_lands_where_the_forecast_with_it_in_place_lands(
    group: list[Decimal], proposed: list[tuple[int, Decimal]], total: Decimal
) -> None:
    """Whatever the prices and quantities: every alternative is cheaper per unit, listed
    cheapest first, saves the difference of the two amounts, and lands the case exactly
    where a forecast of the items with it in place of the proposed one lands it."""
    master = version(1, date(2026, 1, 1), {f"I{n}": str(price) for n, price in enumerate(group)})
    items = [
        ProposedItem(f"I{index % len(group)}", quantity, group[index % len(group)])
        for index, quantity in proposed
    ]
    found = cheaper_alternatives(
        total=total, standard=STANDARD, thresholds=Thresholds(), items=items, chargemaster=master
    )
    for position, (item, alternatives) in enumerate(zip(items, found, strict=True)):
        listed = [a.item.unit_price for a in alternatives]
        assert listed == sorted(listed)
        assert {a.item.item_code for a in alternatives} == {
            code for code, entry in master.items.items() if entry.unit_price < item.unit_price
        }
        for alternative in alternatives:
            swapped = ProposedItem(
                alternative.item.item_code, item.quantity, alternative.item.unit_price
            )
            assert alternative.saving == item.amount - swapped.amount >= 0
            replaced = [*items[:position], swapped, *items[position + 1 :]]
            expected = forecast(total, STANDARD, Thresholds(), replaced).projected
            assert alternative.landing == expected
