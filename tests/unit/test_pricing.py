"""Reference data the core prices against: standards, thresholds, money and ratios."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.casecost.pricing import Standard, Thresholds, money, ratio_of
from tests.unit.case_events import book, catalogue

DAY = date(2026, 3, 1)


def test_a_standard_names_its_drg_group_stay_and_catalogue() -> None:
    price_book = book(catalogue(7))
    assert price_book.standard("H1", "D2", "resident", DAY) == Standard(
        drg_code="D2",
        drg_name="group D2",
        standard_cost=Decimal("16000.00"),
        avg_los_days=Decimal("7.5"),
        catalogue_id=7,
    )


@pytest.mark.parametrize(
    ("override", "standard"), [("0.01", Decimal("0.01")), ("1.00", Decimal("1.00"))]
)
def test_a_standard_of_a_cent_or_more_prices(override: str, standard: Decimal) -> None:
    price_book = book(catalogue(groups={"TINY": ("1", override)}))
    priced = price_book.standard("H1", "TINY", "employee", DAY)
    assert priced is not None and priced.standard_cost == standard


def test_thresholds_may_be_equal() -> None:
    line = Decimal("0.90")
    equal = Thresholds(line, line, line)
    assert equal.level_for(Decimal("8999.99"), Decimal("10000")) == "none"
    assert equal.level_for(Decimal("9000.00"), Decimal("10000")) == "yellow"
    assert equal.level_for(Decimal("9000.01"), Decimal("10000")) == "red"
    Thresholds(Decimal("0.50"), Decimal("0.50"), Decimal("0.70"))
    Thresholds(Decimal("0.50"), Decimal("0.70"), Decimal("0.70"))


@pytest.mark.parametrize(
    ("blue", "yellow", "red"),
    [("0.95", "0.90", "1.00"), ("0.80", "0.95", "0.90"), ("0", "0.90", "1.00"), ("-1", "0", "1")],
)
def test_thresholds_out_of_order_are_refused_with_the_rule(
    blue: str, yellow: str, red: str
) -> None:
    with pytest.raises(ValueError) as refused:
        Thresholds(Decimal(blue), Decimal(yellow), Decimal(red))
    assert str(refused.value) == "thresholds must satisfy 0 < blue <= yellow <= red"


def test_a_blue_line_far_below_the_standard_is_allowed() -> None:
    early = Thresholds(Decimal("0.05"), Decimal("0.06"), Decimal("0.07"))
    assert early.level_for(Decimal("500.00"), Decimal("10000")) == "blue"


def test_money_goes_on_the_wire_to_the_cent() -> None:
    assert money(None) is None
    assert money(Decimal("12.5")) == "12.50"
    assert money(Decimal("3")) == "3.00"
    assert money(Decimal("40400.83")) == "40400.83"


def test_the_ratio_is_rounded_half_up_to_four_places() -> None:
    assert ratio_of(Decimal("1.00"), Decimal("20000.00")) == Decimal("0.0001")  # 0.00005
    assert ratio_of(Decimal("2.50"), Decimal("10000.00")) == Decimal("0.0003")  # 0.00025
    assert ratio_of(Decimal("1334.56"), Decimal("10000.00")) == Decimal("0.1335")
