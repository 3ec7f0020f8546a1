"""Which department ceilings are judged on a day, and the level each is at, by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.casecost.pricing import DEFAULT_THRESHOLDS, Thresholds
from services.casecost.targets import (
    Figures,
    Watch,
    WatchRules,
    actual,
    parse_period,
    transition,
    watched_level,
    watches,
)

DECEMBER = parse_period("2026-12")
YEAR = parse_period("2026")
RULES = WatchRules()
TARGET = Figures(cases=100, cost_per_case=Decimal("10000.00"), total_cost=Decimal("1000000.00"))


def test_a_month_is_not_judged_before_its_seventh_day() -> None:
    so_far = actual(12, Decimal("200000.00"))
    assert watches(DECEMBER, date(2026, 12, 6), TARGET, so_far, RULES) == []
    judged = watches(DECEMBER, date(2026, 12, 7), TARGET, so_far, RULES)
    assert [w.measure for w in judged] == ["total_cost", "cost_per_case"]


def test_a_year_is_judged_from_its_thirtieth_day() -> None:
    so_far = actual(12, Decimal("200000.00"))
    assert watches(YEAR, date(2026, 1, 29), TARGET, so_far, RULES) == []
    assert len(watches(YEAR, date(2026, 1, 30), TARGET, so_far, RULES)) == 2


def test_total_cost_is_judged_by_its_projection_cost_per_case_by_its_value() -> None:
    # 10 days of 31 brought 12 cases and 350,000.00: projected 350,000 x 31 / 10
    total, per_case = watches(
        DECEMBER, date(2026, 12, 10), TARGET, actual(12, Decimal("350000.00")), RULES
    )
    assert total == Watch(
        "total_cost",
        so_far=Decimal("350000.00"),
        target=Decimal("1000000.00"),
        compared=Decimal("1085000.00"),
        projected=Decimal("1085000.00"),
    )
    assert total.ratio == Decimal("1.0850")
    # 350,000.00 / 12 = 29,166.67 per case against 10,000.00
    assert per_case.compared == Decimal("29166.67")
    assert per_case.projected is None
    assert per_case.ratio == Decimal("2.9167")


def test_cost_per_case_waits_for_enough_cases() -> None:
    judged = watches(DECEMBER, date(2026, 12, 10), TARGET, actual(9, Decimal("90000.00")), RULES)
    assert [w.measure for w in judged] == ["total_cost"]
    fewer = WatchRules(min_cases=9)
    judged = watches(DECEMBER, date(2026, 12, 10), TARGET, actual(9, Decimal("90000.00")), fewer)
    assert [w.measure for w in judged] == ["total_cost", "cost_per_case"]


def test_measures_without_a_target_are_not_judged() -> None:
    only_cases = Figures(cases=100, cost_per_case=None, total_cost=None)
    assert watches(DECEMBER, date(2026, 12, 20), only_cases, actual(50, Decimal("1")), RULES) == []


def test_a_period_without_discharges_projects_nothing_over() -> None:
    (total,) = watches(DECEMBER, date(2026, 12, 20), TARGET, actual(0, Decimal(0)), RULES)
    assert total.compared == Decimal("0.00")
    assert watched_level(total, DEFAULT_THRESHOLDS, "none") == "none"


def watch(compared: str) -> Watch:
    return Watch("total_cost", Decimal(0), Decimal("1000.00"), Decimal(compared), None)


@pytest.mark.parametrize(
    ("compared", "level"),
    [
        ("899.99", "none"),
        ("900.00", "blue"),
        ("949.99", "blue"),
        ("950.00", "yellow"),
        ("1000.00", "yellow"),
        ("1000.01", "red"),
    ],
)
def test_levels_rise_at_the_hospitals_thresholds_exactly(compared: str, level: str) -> None:
    assert watched_level(watch(compared), DEFAULT_THRESHOLDS, "none") == level


@pytest.mark.parametrize(
    ("previous", "compared", "level"),
    [
        # red holds until the projection is 2% of the target below red (1000.00)
        ("red", "980.01", "red"),
        ("red", "980.00", "yellow"),
        ("red", "930.00", "yellow"),  # yellow (950.00) holds down to 930.00 ...
        ("red", "929.99", "blue"),  # ... and blue (900.00) down to 880.00
        ("red", "879.99", "none"),
        ("yellow", "930.00", "yellow"),
        ("yellow", "929.99", "blue"),
        ("blue", "880.00", "blue"),
        ("blue", "879.99", "none"),
        # rising is never held back
        ("blue", "1000.01", "red"),
    ],
)
def test_a_level_is_held_a_little_on_the_way_down(previous: str, compared: str, level: str) -> None:
    assert watched_level(watch(compared), DEFAULT_THRESHOLDS, previous) == level  # type: ignore[arg-type]


def test_the_hospitals_own_thresholds_apply() -> None:
    strict = Thresholds(blue=Decimal("0.80"), yellow=Decimal("0.85"), red=Decimal("0.90"))
    assert watched_level(watch("900.01"), strict, "none") == "red"
    assert watched_level(watch("850.00"), strict, "none") == "yellow"


def test_transitions_read_as_for_cases() -> None:
    assert transition("none", "red") == "escalated"
    assert transition("red", "yellow") == "de-escalated"
    assert transition("yellow", "none") == "resolved"
