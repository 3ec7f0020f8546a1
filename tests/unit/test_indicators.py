"""The indicator formulas and the targets' pace over small tables computed by hand.

The table (README "Indicators" works through the same numbers): November 2026, six
discharged cases in three DRGs, AA11 (weight 1, average stay 5 days), BB22 (weight 2.5,
10 days) and CC33 (weight 0.5, no average stay):

| case | dept | DRG  | standard | cost  | stay | drug  | consumable | other          | flag |
|------|------|------|----------|-------|------|-------|------------|----------------|------|
| C1   | CARD | AA11 | 10000    | 8000  | 4    | 6000  |            | lab 2000       |      |
| C2   | CARD | AA11 | 8000     | 10000 | 7    | 5000  | 3000       | bed 2000       |      |
| C3   | CARD | BB22 | 25000    | 52000 | 12   | 8000  | 40000      | procedure 4000 | high |
| C4   | SURG | BB22 | 25000    | 18000 | 9    |       | 15000      | procedure 3000 |      |
| C5   | SURG | CC33 | 4000     | 1200  | 1    | 1200  |            |                | low  |
| C6   | SURG | CC33 | 4000     | 3400  | 1    | 3000  |            | lab 400        |      |

and the period before: CARD 9000 (one case), SURG 21000 (one case).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.casecost.indicators import DischargedCase, compute, merged, summarize, tally
from services.casecost.targets import (
    Figures,
    elapsed_share,
    month_of_year,
    pace,
    parse_period,
    project,
)

AVG = {"AA11": Decimal("5.0"), "BB22": Decimal("10.0"), "CC33": None}
WEIGHT = {"AA11": Decimal("1.0000"), "BB22": Decimal("2.5000"), "CC33": Decimal("0.5000")}
# the region's mean cost per case, where the catalogue gives one
MEAN = {"AA11": Decimal("9500.00"), "BB22": Decimal("30000.00"), "CC33": None}


def case(
    department: str,
    drg: str,
    standard: str,
    stay: int,
    categories: dict[str, str],
    flag: str | None = None,
) -> DischargedCase:
    costs = {k: Decimal(v) for k, v in categories.items()}
    return DischargedCase(
        department=department,
        drg_code=drg,
        standard_cost=Decimal(standard),
        total_cost=sum(costs.values(), Decimal(0)),
        weight=WEIGHT[drg],
        los_days=stay,
        avg_los_days=AVG[drg],
        cost_by_category=costs,
        ratio_flag=flag,
        mean_cost=MEAN[drg],
    )


NOVEMBER = [
    case("CARD", "AA11", "10000.00", 4, {"drug": "6000", "lab": "2000"}),
    case("CARD", "AA11", "8000.00", 7, {"drug": "5000", "consumable": "3000", "bed": "2000"}),
    case(
        "CARD",
        "BB22",
        "25000.00",
        12,
        {"consumable": "40000", "drug": "8000", "procedure": "4000"},
        "high",
    ),
    case("SURG", "BB22", "25000.00", 9, {"consumable": "15000", "procedure": "3000"}),
    case("SURG", "CC33", "4000.00", 1, {"drug": "1200"}, "low"),
    case("SURG", "CC33", "4000.00", 1, {"drug": "3000", "lab": "400"}),
]
OCTOBER = [
    case("CARD", "AA11", "10000.00", 5, {"drug": "9000"}),
    case("SURG", "BB22", "25000.00", 10, {"consumable": "21000"}),
]


def test_the_hospital_as_a_whole() -> None:
    figures = compute(NOVEMBER, OCTOBER)

    assert figures.cases == 6
    # 1 + 1 + 2.5 + 2.5 + 0.5 + 0.5 = 8; 8 / 6
    assert figures.total_weight == Decimal("8.0000")
    assert figures.cmi == Decimal("1.3333")
    assert figures.total_cost == Decimal("92600.00")
    assert figures.total_standard == Decimal("76000.00")
    assert figures.budget_execution == Decimal("1.2184")  # 92600 / 76000
    assert figures.surplus == Decimal("-16600.00")  # overspend
    # AA11 18000/18000 = 1, BB22 70000/50000 = 1.4, CC33 4600/8000 = 0.575, two cases
    # each: (2 x 1 + 2 x 1.4 + 2 x 0.575) / 6 = 5.95 / 6
    assert figures.cost_consumption_index == Decimal("0.9917")
    # against the region's means: AA11 18000 / (2 x 9500) = 0.9474, BB22 70000 / (2 x 30000)
    # = 1.1667; CC33 has no regional mean: (2 x 0.9474 + 2 x 1.1667) / 4 = 4.2281 / 4
    assert figures.regional_cost_consumption_index == Decimal("1.0570")
    # AA11 (4 + 7) / (5 + 5) = 1.1, BB22 (12 + 9) / (10 + 10) = 1.05; CC33 has no
    # average stay: (2 x 1.1 + 2 x 1.05) / 4
    assert figures.time_consumption_index == Decimal("1.0750")
    assert figures.mean_los_days == Decimal("5.67")  # 34 / 6
    assert figures.drug_share == Decimal("0.2505")  # 23200 / 92600
    assert figures.consumables_share == Decimal("0.6263")  # 58000 / 92600
    assert figures.cost_by_category_share == {
        "bed": Decimal("0.0216"),
        "consumable": Decimal("0.6263"),
        "drug": Decimal("0.2505"),
        "lab": Decimal("0.0259"),
        "procedure": Decimal("0.0756"),
    }
    assert (figures.high_ratio_cases, figures.high_ratio_share) == (1, Decimal("0.1667"))
    assert (figures.low_ratio_cases, figures.low_ratio_share) == (1, Decimal("0.1667"))
    assert figures.cost_per_case == Decimal("15433.33")
    assert figures.previous_cost_per_case == Decimal("15000.00")  # 30000 / 2
    assert figures.cost_per_case_change == Decimal("0.0289")  # 15433.33... / 15000 - 1


def by_department(cases: list[DischargedCase]) -> dict[str | None, list[DischargedCase]]:
    groups: dict[str | None, list[DischargedCase]] = {}
    for row in cases:
        groups.setdefault(row.department, []).append(row)
    return groups


def test_the_sums_of_the_groups_make_the_whole() -> None:
    groups = [tally(members) for members in by_department(NOVEMBER).values()]
    assert summarize(merged(groups), Decimal(15000)) == compute(NOVEMBER, OCTOBER)


def test_each_department() -> None:
    now = by_department(NOVEMBER)
    before = by_department(OCTOBER)
    card = compute(now["CARD"], before["CARD"])
    surg = compute(now["SURG"], before["SURG"])

    assert (card.cases, card.total_weight, card.cmi) == (3, Decimal("4.5000"), Decimal("1.5000"))
    assert (card.total_cost, card.total_standard) == (Decimal("70000.00"), Decimal("43000.00"))
    assert card.budget_execution == Decimal("1.6279")
    assert card.surplus == Decimal("-27000.00")
    assert card.cost_consumption_index == Decimal("1.3600")  # (2 x 1 + 1 x 2.08) / 3
    assert card.time_consumption_index == Decimal("1.1333")  # (2 x 1.1 + 1 x 1.2) / 3
    assert card.mean_los_days == Decimal("7.67")
    assert (card.drug_share, card.consumables_share) == (Decimal("0.2714"), Decimal("0.6143"))
    assert (card.high_ratio_cases, card.low_ratio_cases) == (1, 0)
    assert (card.high_ratio_share, card.low_ratio_share) == (Decimal("0.3333"), Decimal("0.0000"))
    assert card.cost_per_case == Decimal("23333.33")
    assert card.previous_cost_per_case == Decimal("9000.00")
    assert card.cost_per_case_change == Decimal("1.5926")

    assert (surg.cases, surg.total_weight, surg.cmi) == (3, Decimal("3.5000"), Decimal("1.1667"))
    assert (surg.total_cost, surg.total_standard) == (Decimal("22600.00"), Decimal("33000.00"))
    assert surg.budget_execution == Decimal("0.6848")
    assert surg.surplus == Decimal("10400.00")
    assert surg.cost_consumption_index == Decimal("0.6233")  # (1 x 0.72 + 2 x 0.575) / 3
    assert surg.time_consumption_index == Decimal("0.9000")  # only BB22: 9 / 10
    assert surg.mean_los_days == Decimal("3.67")
    assert (surg.drug_share, surg.consumables_share) == (Decimal("0.1858"), Decimal("0.6637"))
    assert (surg.high_ratio_cases, surg.low_ratio_cases) == (0, 1)
    assert surg.cost_per_case == Decimal("7533.33")
    assert surg.previous_cost_per_case == Decimal("21000.00")
    assert surg.cost_per_case_change == Decimal("-0.6413")


def test_an_empty_period_has_no_figures_to_divide() -> None:
    figures = compute([], OCTOBER)

    assert (figures.cases, figures.high_ratio_cases, figures.low_ratio_cases) == (0, 0, 0)
    assert figures.cost_by_category_share == {}
    for name in (
        "total_weight",
        "cmi",
        "total_cost",
        "total_standard",
        "budget_execution",
        "surplus",
        "cost_consumption_index",
        "regional_cost_consumption_index",
        "time_consumption_index",
        "mean_los_days",
        "drug_share",
        "consumables_share",
        "high_ratio_share",
        "low_ratio_share",
        "cost_per_case",
        "cost_per_case_change",
    ):
        assert getattr(figures, name) is None, name
    assert figures.previous_cost_per_case == Decimal("15000.00")
    assert compute(NOVEMBER, []).cost_per_case_change is None


def test_only_drgs_without_an_average_stay_give_no_time_index() -> None:
    chemo = [c for c in NOVEMBER if c.drg_code == "CC33"]
    figures = compute(chemo)
    assert figures.time_consumption_index is None
    assert figures.mean_los_days == Decimal("1.00")
    assert figures.cost_consumption_index == Decimal("0.5750")
    # nor a regional mean cost: no regional index either
    assert figures.regional_cost_consumption_index is None


def test_a_case_whose_group_is_gone_is_left_out_of_the_cmi_only() -> None:
    unknown = [NOVEMBER[0], NOVEMBER[2].__class__(**{**_fields(NOVEMBER[2]), "weight": None})]
    figures = compute(unknown)
    assert figures.cases == 2
    assert (figures.total_weight, figures.cmi) == (Decimal("1.0000"), Decimal("1.0000"))
    assert figures.total_cost == Decimal("60000.00")


def _fields(row: DischargedCase) -> dict[str, object]:
    return {name: getattr(row, name) for name in DischargedCase.__dataclass_fields__}


# --- targets ----------------------------------------------------------------------


def test_periods_are_years_or_months_of_local_days() -> None:
    december = parse_period("2026-12")
    assert (december.first, december.last, december.days) == (
        date(2026, 12, 1),
        date(2026, 12, 31),
        31,
    )
    assert parse_period("2028-02").days == 29
    year = parse_period("2026")
    assert (year.first, year.last, year.is_month) == (date(2026, 1, 1), date(2026, 12, 31), False)
    for wrong in ("2026-13", "2026-1", "26", "0999", "2026-00", "2026-12-01"):
        with pytest.raises(ValueError):
            parse_period(wrong)


def test_elapsed_share_counts_today() -> None:
    december = parse_period("2026-12")
    assert elapsed_share(december, date(2026, 11, 30)) == Decimal("0.0000")
    assert elapsed_share(december, date(2026, 12, 1)) == Decimal("0.0323")  # 1 / 31
    assert elapsed_share(december, date(2026, 12, 10)) == Decimal("0.3226")  # 10 / 31
    assert elapsed_share(december, date(2027, 1, 5)) == Decimal("1.0000")


def test_the_projection_is_linear_over_elapsed_days() -> None:
    december = parse_period("2026-12")
    # 10 of 31 days: 40 cases and 600000.00 so far -> 124 cases, 1860000.00
    projected = project(december, date(2026, 12, 10), 40, Decimal("600000.00"))
    assert projected == Figures(124, Decimal("15000.00"), Decimal("1860000.00"))
    assert project(december, date(2026, 11, 30), 0, Decimal(0)) is None


def test_a_month_takes_a_twelfth_of_its_years_target() -> None:
    yearly = Figures(1000, Decimal("15000.00"), Decimal("15000000.00"))
    assert month_of_year(yearly) == Figures(83, Decimal("15000.00"), Decimal("1250000.00"))
    assert month_of_year(Figures(None, None, Decimal("100.00"))) == Figures(
        None, None, Decimal("8.33")
    )


@pytest.mark.parametrize(
    ("projected_cases", "expected"),
    [(94, "behind"), (95, "on_track"), (100, "on_track"), (105, "on_track"), (106, "ahead")],
)
def test_cases_pace_has_a_five_percent_band(projected_cases: int, expected: str) -> None:
    target = Figures(100, None, None)
    so_far = Figures(30, None, None)
    projected = Figures(projected_cases, None, None)
    assert pace(target, so_far, projected) == {
        "cases": expected,
        "cost_per_case": None,
        "total_cost": None,
    }


def test_costs_are_ceilings() -> None:
    target = Figures(None, Decimal("15000.00"), Decimal("1500000.00"))
    under = pace(
        target,
        Figures(30, Decimal("15000.00"), Decimal("450000.00")),
        Figures(100, Decimal("15000.00"), Decimal("1500000.00")),
    )
    assert under == {"cases": None, "cost_per_case": "on_track", "total_cost": "on_track"}
    over = pace(
        target,
        Figures(30, Decimal("15000.01"), Decimal("450000.30")),
        Figures(100, Decimal("15000.01"), Decimal("1500001.00")),
    )
    assert over == {"cases": None, "cost_per_case": "over", "total_cost": "over"}
    assert pace(target, Figures(0, None, Decimal(0)), None) == {
        "cases": None,
        "cost_per_case": None,
        "total_cost": None,
    }
