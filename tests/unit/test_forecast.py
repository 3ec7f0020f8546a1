"""forecast: where a case lands if proposed items are ordered, and the money left per level."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.casecost.forecast import Landing, ProposedItem, forecast, landing
from services.casecost.pricing import LEVEL_RANK, Thresholds

DEFAULT = Thresholds()
STANDARD = Decimal("10000.00")
CENT = Decimal("0.01")


def item(quantity: str, unit_price: str, code: str = "X") -> ProposedItem:
    return ProposedItem(code, Decimal(quantity), Decimal(unit_price))


@pytest.mark.parametrize(
    ("quantity", "unit_price", "amount"),
    [
        ("2", "770.00", "1540.00"),
        ("3", "0.3350", "1.01"),  # 1.005: half-up, not half-even
        ("1", "0.0049", "0.00"),
        ("2.5", "3.3333", "8.33"),  # 8.33325
    ],
)
def test_a_proposed_item_costs_quantity_times_price_rounded_half_up_to_the_cent(
    quantity: str, unit_price: str, amount: str
) -> None:
    assert item(quantity, unit_price).amount == Decimal(amount)


def test_the_forecast_adds_every_proposed_item_to_the_current_total() -> None:
    result = forecast(
        Decimal("8000.00"), STANDARD, DEFAULT, [item("1", "700.00"), item("2", "400.005", "Y")]
    )
    assert result.added_cost == Decimal("1500.01")
    assert result.current == Landing(Decimal("8000.00"), Decimal("0.8000"), "none")
    assert result.projected == Landing(Decimal("9500.01"), Decimal("0.9500"), "yellow")


def test_no_proposed_items_add_nothing() -> None:
    result = forecast(Decimal("9000.00"), STANDARD, DEFAULT, [])
    assert result.added_cost == 0 and isinstance(result.added_cost, Decimal)
    assert result.projected == result.current == Landing(Decimal("9000.00"), Decimal("0.9"), "blue")


def test_an_unpriced_case_lands_unpriced_and_has_no_headroom() -> None:
    result = forecast(Decimal("50000.00"), None, DEFAULT, [item("1", "12000.00")])
    assert result.current == Landing(Decimal("50000.00"), None, "unpriced")
    assert result.projected == Landing(Decimal("62000.00"), None, "unpriced")
    assert result.added_cost == Decimal("12000.00") and result.headroom is None


def test_landing_uses_the_given_thresholds() -> None:
    strict = Thresholds(Decimal("0.50"), Decimal("0.60"), Decimal("0.70"))
    assert landing(Decimal("6000.00"), STANDARD, strict).level == "yellow"
    assert landing(Decimal("6000.00"), STANDARD, DEFAULT).level == "none"
    assert landing(Decimal("7000.01"), STANDARD, strict) == Landing(
        Decimal("7000.01"), Decimal("0.7000"), "red"
    )


def test_headroom_is_the_money_that_reaches_each_level() -> None:
    result = forecast(Decimal("7000.00"), STANDARD, DEFAULT, [item("1", "1000.00")])
    # blue and yellow are reached at the line, red only one cent above it
    assert result.headroom == {
        "blue": Decimal("1000.00"),
        "yellow": Decimal("1500.00"),
        "red": Decimal("2000.01"),
    }


def test_headroom_of_a_level_already_reached_is_zero_to_the_cent() -> None:
    result = forecast(Decimal("9800.00"), STANDARD, DEFAULT, [item("1", "1000.00")])
    assert result.headroom == {"blue": 0, "yellow": 0, "red": 0}
    assert {str(amount) for amount in result.headroom.values()} == {"0.00"}
    at_the_red_line = forecast(STANDARD, STANDARD, DEFAULT, [])
    assert at_the_red_line.headroom == {"blue": 0, "yellow": 0, "red": CENT}


# a line that falls between two cents: 0.90 x 10000.06 = 9000.054, reached at 9000.06
@pytest.mark.parametrize(
    ("standard", "level", "headroom"),
    [
        ("10000.06", "blue", "9000.06"),  # 9000.054: the next cent up, not the nearest
        ("10000.05", "blue", "9000.05"),  # 9000.045
        ("10000.01", "yellow", "9500.01"),  # 9500.0095
        ("10000.07", "red", "10000.08"),  # one cent above a whole-cent line
    ],
)
def test_headroom_of_a_line_between_two_cents_is_the_next_cent_that_reaches_it(
    standard: str, level: str, headroom: str
) -> None:
    result = forecast(Decimal("0.00"), Decimal(standard), DEFAULT, [])
    assert result.headroom is not None and result.headroom[level] == Decimal(headroom)


THRESHOLDS = [
    DEFAULT,
    Thresholds(Decimal("0.93"), Decimal("0.955"), Decimal("1.05")),
    Thresholds(Decimal("0.8"), Decimal("0.8"), Decimal("0.8")),
    Thresholds(Decimal("0.5001"), Decimal("0.6667"), Decimal("1.3333")),
]
CENTS = st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    total=CENTS,
    standard=st.decimals(
        min_value=Decimal("0.01"),
        max_value=100000,
        places=2,
        allow_nan=False,
        allow_infinity=False,
    ),
    thresholds=st.sampled_from(THRESHOLDS),
    proposed=st.lists(CENTS.map(lambda price: item("1", str(price))), max_size=3),
)
def test_headroom_is_the_least_money_that_reaches_each_level(
    total: Decimal,
    standard: Decimal,
    thresholds: Thresholds,
    proposed: list[ProposedItem],
) -> None:
    result = forecast(total, standard, thresholds, proposed)
    assert result.headroom is not None
    projected = result.projected.total_cost
    for level, amount in result.headroom.items():
        assert amount >= 0 and amount == amount.quantize(CENT)
        reached = landing(projected + amount, standard, thresholds).level
        assert LEVEL_RANK[reached] >= LEVEL_RANK[level], (level, amount)
        if amount > 0:
            short = landing(projected + amount - CENT, standard, thresholds).level
            assert LEVEL_RANK[short] < LEVEL_RANK[level], (level, amount)
