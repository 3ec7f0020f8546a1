"""The explanation of a case's cost, on constructed cases: categories against the typical
mix, top items and doctors, the day the cost accelerated, the driver and its sentences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.casecost.explain import (
    Acceleration,
    CaseFigures,
    CategoryCost,
    Driver,
    ItemLine,
    RuleFinding,
    TypicalMix,
    accelerated_day,
    explain,
)

D = Decimal
ADMITTED = date(2026, 3, 2)


def item(code: str, name: str, category: str, quantity: str, amount: str) -> ItemLine:
    return ItemLine(code, name, category, D(quantity), D(amount))


def figures(
    by_category: Mapping[str, str],
    *,
    items: Sequence[ItemLine] = (),
    by_day: Mapping[date, str] | None = None,
    by_orderer: Mapping[str, str] | None = None,
    los_days: int | None = 3,
    avg_los_days: str | None = "7.5",
    drg_code: str | None = "FM15",
) -> CaseFigures:
    categories = {category: D(amount) for category, amount in by_category.items()}
    total = sum(categories.values(), D(0))
    return CaseFigures(
        drg_code=drg_code,
        total_cost=total,
        cost_by_category=categories,
        cost_by_day={ADMITTED: total}
        if by_day is None
        else {day: D(amount) for day, amount in by_day.items()},
        admitted_day=ADMITTED,
        items=items,
        cost_by_orderer={name: D(amount) for name, amount in (by_orderer or {}).items()},
        los_days=los_days,
        avg_los_days=None if avg_los_days is None else D(avg_los_days),
    )


TYPICAL = TypicalMix(
    shares={"consumable": D("0.35"), "drug": D("0.40"), "exam": D("0.15"), "lab": D("0.10")},
    cases=12,
)
STENT = item("C100", "进口冠脉支架", "consumable", "3", "5400")


def test_categories_against_the_typical_mix_share_difference_and_excess() -> None:
    case = figures({"consumable": "6200", "drug": "2000", "exam": "1800"}, items=[STENT])

    explanation = explain(case, TYPICAL)

    assert explanation.categories == (
        CategoryCost("consumable", D("6200.00"), D("0.6200"), D("0.35"), D("0.2700"), D("2700.00")),
        CategoryCost("drug", D("2000.00"), D("0.2000"), D("0.40"), D("-0.2000"), D("-2000.00")),
        CategoryCost("exam", D("1800.00"), D("0.1800"), D("0.15"), D("0.0300"), D("300.00")),
        # typical, though this case has none of it
        CategoryCost("lab", D("0.00"), D("0.0000"), D("0.10"), D("-0.1000"), D("-1000.00")),
    )
    assert explanation.typical == TYPICAL


def test_without_a_typical_mix_categories_carry_only_the_case_share() -> None:
    explanation = explain(figures({"drug": "1", "lab": "2"}), None)

    assert explanation.categories == (
        CategoryCost("lab", D("2.00"), D("0.6667"), None, None, None),
        CategoryCost("drug", D("1.00"), D("0.3333"), None, None, None),
    )
    assert explanation.typical is None


def test_the_driver_is_the_category_furthest_over_its_typical_share_and_the_sentences_say_so() -> (
    None
):
    case = figures(
        {"consumable": "6200", "drug": "2000", "exam": "1800"},
        items=[item("D1", "阿托伐他汀", "drug", "10", "2000"), STENT],
        by_orderer={"D1024": "7000", "": "2500", "D2048": "500"},
    )

    explanation = explain(case, TYPICAL)

    assert explanation.driver == Driver("category", category="consumable")
    assert explanation.summary_zh == (
        "耗材占费用 62%（FM15 本院同组典型 35%）；主要为进口冠脉支架 ×3（5400.00 元）"
        "；开单最多的医生 D1024"
    )
    assert explanation.summary_en == (
        "consumables are 62% of cost against 35% typical for FM15; "
        "mostly 3 x 进口冠脉支架 (5400.00); top ordering doctor D1024"
    )


def test_a_category_less_than_five_points_over_typical_is_not_the_driver() -> None:
    # exam 19% against 15% typical: 4 points over, not enough; no item reaches 20%
    case = figures(
        {"consumable": "3500", "drug": "3800", "exam": "1900", "lab": "800"},
        items=[item("X", "CT", "exam", "1", "1900")],
        by_day={ADMITTED: "10000"},
        los_days=3,
    )

    explanation = explain(case, TYPICAL)

    assert explanation.driver == Driver("largest_category", category="drug")
    assert explanation.summary_zh == "药品费用最多，占 38%"
    assert explanation.summary_en == "drugs cost the most, 38% of cost"


def test_without_a_typical_mix_the_costliest_item_drives_when_a_fifth_of_the_cost() -> None:
    pump = item("P7", "insulin pump", "consumable", "1", "2000.5")
    case = figures(
        {"consumable": "2000.5", "drug": "7999.5"},
        items=[item("D2", "saline", "drug", "40", "1999.5"), pump],
        by_orderer={"D9": "5000", "D3": "5000.5"},
    )

    explanation = explain(case, None)

    assert explanation.driver == Driver("item", category="consumable", item=pump)
    assert explanation.summary_en == (
        "the costliest item is 1 x insulin pump, 2000.50, 20% of cost; top ordering doctor D3"
    )
    assert explanation.summary_zh == (
        "最大单项为insulin pump ×1，2000.50 元，占费用 20%；开单最多的医生 D3"
    )


def test_an_item_under_a_fifth_of_the_cost_gives_way_to_the_day_the_cost_accelerated() -> None:
    case = figures(
        {"drug": "10000"},
        items=[item("D2", "saline", "drug", "40", "1999.99")],
        by_day={date(2026, 3, 2): "1000", date(2026, 3, 3): "1000", date(2026, 3, 4): "8000"},
    )

    explanation = explain(case, None)

    assert explanation.accelerated == Acceleration(date(2026, 3, 4), D("8000.00"), D("1000.00"))
    assert explanation.driver == Driver("day", day=date(2026, 3, 4))
    assert (
        explanation.summary_zh == "费用自 2026-03-04 起加速：当日 8000.00 元，此前日均 1000.00 元"
    )
    assert explanation.summary_en == (
        "cost accelerated on 2026-03-04: 8000.00 that day against 1000.00 a day before"
    )


def test_a_stay_past_the_average_drives_when_nothing_else_stands_out() -> None:
    case = figures(
        {"drug": "500", "bed": "450", "nursing": "450", "lab": "400"},
        by_day={date(2026, 3, day): "150" for day in range(2, 14)},
        los_days=12,
        avg_los_days="7.5",
    )

    explanation = explain(case, None)

    assert explanation.accelerated is None
    assert explanation.driver == Driver("stay")
    assert explanation.summary_zh == "住院 12 天，超过 FM15 平均住院日 7.5 天"
    assert explanation.summary_en == "a stay of 12 days against 7.5 on average for FM15"


def test_a_case_without_cost_has_no_driver() -> None:
    explanation = explain(figures({}, by_day={}), TYPICAL)

    assert explanation.driver is None
    assert (explanation.summary_zh, explanation.summary_en) == ("尚无费用", "no cost yet")
    assert all(row.share is None and row.excess is None for row in explanation.categories)


def test_top_items_and_doctors_largest_first_with_their_share() -> None:
    items = [item(f"I{n}", f"item {n}", "drug", "1", str(100 * n)) for n in range(1, 8)]
    case = figures(
        {"drug": "2800"},
        items=[*items, item("CR", "credited", "drug", "0", "0")],
        by_orderer={"A": "700", "B": "1400", "": "300", "C": "300", "D": "100"},
    )

    explanation = explain(case, None)

    assert [(entry.item.item_code, entry.share) for entry in explanation.top_items] == [
        ("I7", D("0.2500")),
        ("I6", D("0.2143")),
        ("I5", D("0.1786")),
        ("I4", D("0.1429")),
        ("I3", D("0.1071")),
    ]
    # doctors only: lines that named no orderer are not a doctor
    assert [(o.ordered_by, o.amount, o.share) for o in explanation.top_orderers] == [
        ("B", D("1400.00"), D("0.5000")),
        ("A", D("700.00"), D("0.2500")),
        ("C", D("300.00"), D("0.1071")),
    ]


def days(*amounts: str, start: int = 2) -> dict[date, Decimal]:
    return {date(2026, 3, start + n): D(a) for n, a in enumerate(amounts) if a != "-"}


def test_acceleration_needs_more_than_twice_the_mean_of_the_days_before() -> None:
    assert accelerated_day(days("100", "100", "200"), ADMITTED) is None
    assert accelerated_day(days("100", "100", "200.01"), ADMITTED) == Acceleration(
        date(2026, 3, 4), D("200.01"), D("100.00")
    )
    # the mean is of every day before, not of the last two
    assert accelerated_day(days("600", "0", "0", "400"), ADMITTED) is None
    assert accelerated_day(days("600", "0", "0", "0", "0", "500"), ADMITTED) == Acceleration(
        date(2026, 3, 7), D("500.00"), D("120.00")
    )


def test_acceleration_waits_for_two_days_of_baseline() -> None:
    # the second day is ten times the first, but two days make the first baseline
    assert accelerated_day(days("100", "1000", "1000"), ADMITTED) is None
    assert accelerated_day(days("100", "1000", "1100"), ADMITTED) is None
    assert accelerated_day(days("100", "1000", "1101"), ADMITTED) == Acceleration(
        date(2026, 3, 4), D("1101.00"), D("550.00")
    )


def test_days_without_charges_count_as_zero_from_admission() -> None:
    # nothing on the admission day; 3 March 300, 5 March 400: the mean before 5 March is
    # (0 + 300 + 0) / 3 = 100
    assert accelerated_day(days("-", "300", "-", "400"), ADMITTED) == Acceleration(
        date(2026, 3, 5), D("400.00"), D("100.00")
    )
    # counted from the first cost day when admission is not known: (300 + 0) / 2 = 150
    assert accelerated_day(days("-", "300", "-", "400"), None) == Acceleration(
        date(2026, 3, 5), D("400.00"), D("150.00")
    )


def test_no_trend_to_break_while_the_days_before_sum_to_nothing() -> None:
    assert accelerated_day(days("0", "0", "500"), ADMITTED) is None
    # a credit that cancels the first days leaves no trend either
    assert accelerated_day(days("100", "-100", "500"), ADMITTED) is None
    assert accelerated_day({}, ADMITTED) is None


# --- properties over generated cases ---------------------------------------------------------

CATEGORIES = ["drug", "consumable", "exam", "lab", "procedure", "bed", "nursing", "other"]
AMOUNTS = st.decimals(
    min_value=-500, max_value=20000, places=2, allow_nan=False, allow_infinity=False
)


@given(st.lists(st.one_of(st.none(), AMOUNTS), max_size=12), st.booleans())
@settings(max_examples=300, deadline=None)
def test_the_acceleration_day_is_the_first_to_break_the_trend(
    amounts: list[Decimal | None], admitted: bool
) -> None:
    by_day = {
        date(2026, 3, 2 + n): amount for n, amount in enumerate(amounts) if amount is not None
    }
    found = accelerated_day(by_day, ADMITTED if admitted else None)
    if not by_day:
        assert found is None
        return
    start = ADMITTED if admitted else min(by_day)
    stay = [
        by_day.get(date.fromordinal(o), D(0))
        for o in range(start.toordinal(), 1 + max(by_day).toordinal())
    ]
    breaking = [
        n for n in range(2, len(stay)) if sum(stay[:n]) > 0 and stay[n] > 2 * sum(stay[:n]) / n
    ]
    if not breaking:
        assert found is None
    else:
        n = breaking[0]
        assert found is not None
        assert found.day == date.fromordinal(start.toordinal() + n)
        assert found.amount == stay[n]
        assert found.baseline == (sum(stay[:n]) / n).quantize(D("0.01"), ROUND_HALF_UP)


@given(
    st.dictionaries(st.sampled_from(CATEGORIES), AMOUNTS.filter(lambda a: a > 0), min_size=1),
    st.dictionaries(
        st.sampled_from(CATEGORIES),
        st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False),
    ),
)
@settings(max_examples=300, deadline=None)
def test_excess_money_reconciles_with_the_total_and_the_driver_is_over_the_margin(
    by_category: dict[str, Decimal], shares: dict[str, Decimal]
) -> None:
    case = figures({category: str(amount) for category, amount in by_category.items()})
    total = case.total_cost
    explanation = explain(case, TypicalMix(shares=shares, cases=10))

    assert sum(row.amount for row in explanation.categories) == total
    # excess = amount - typical x total, so over every category it sums to
    # total x (1 - the typical shares), each row rounded to the cent
    expected = total * (1 - sum((s for s in shares.values() if s > 0), D(0)))
    excess = sum((row.excess or D(0)) for row in explanation.categories)
    assert abs(excess - expected) <= D("0.005") * len(explanation.categories)
    driver = explanation.driver
    assert driver is not None
    if driver.kind == "category":
        chosen = by_category[driver.category or ""] / total - shares.get(driver.category or "", 0)
        assert chosen >= D("0.05")
        for category, amount in by_category.items():
            difference = amount / total - shares.get(category, D(0))
            assert difference < D("0.05") or difference <= chosen
    else:
        assert all(
            amount / total - shares.get(c, D(0)) < D("0.05") for c, amount in by_category.items()
        )


def finding(alert_id: str, severity: str, minute: int, rule: str = "repeat-exam") -> RuleFinding:
    return RuleFinding(
        alert_id=alert_id,
        rule_id=rule,
        rule_version=1,
        rule_name_zh=f"规则{rule}",
        rule_name_en=f"rule {rule}",
        severity=severity,
        text_zh=f"发现{alert_id}",
        text_en=f"found {alert_id}",
        raised_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC) + timedelta(minutes=minute),
        occurred_at=datetime(2026, 3, 2, 7, 0, tzinfo=UTC) + timedelta(minutes=minute),
    )


def test_the_sentences_add_the_most_severe_rule_finding_after_the_driver() -> None:
    pump = item("P7", "insulin pump", "consumable", "1", "2000.5")
    case = figures(
        {"consumable": "2000.5", "drug": "7999.5"},
        items=[item("D2", "saline", "drug", "40", "1999.5"), pump],
        by_orderer={"D9": "5000", "D3": "5000.5"},
    )
    findings = [
        finding("a1", "yellow", 1),
        finding("a2", "red", 2, "same-day-repeats"),
        finding("a3", "blue", 3, "daily-spike"),
        finding("a4", "red", 0, "large-order"),
    ]

    explanation = explain(case, None, findings)

    assert explanation.summary_en == (
        "the costliest item is 1 x insulin pump, 2000.50, 20% of cost; top ordering doctor D3;"
        ' rule alert "rule same-day-repeats": found a2 (4 rule alerts in all)'
    )
    assert explanation.summary_zh == (
        "最大单项为insulin pump ×1，2000.50 元，占费用 20%；开单最多的医生 D3；"
        "规则预警「规则same-day-repeats」：发现a2（共 4 条规则预警）"
    )
    # newest first
    assert [found.alert_id for found in explanation.rule_findings] == ["a3", "a2", "a1", "a4"]
    assert explanation.rule_findings_total == 4


def test_one_finding_is_stated_alone_and_a_case_without_findings_reads_as_before() -> None:
    case = figures({"drug": "100"})
    alone = explain(case, None, [finding("a1", "yellow", 1)])
    assert (
        alone.summary_en
        == 'drugs cost the most, 100% of cost; rule alert "rule repeat-exam": found a1'
    )
    assert explain(case, None).summary_en == "drugs cost the most, 100% of cost"
    assert explain(case, None).rule_findings == () and explain(case, None).rule_findings_total == 0
    # before any cost, a finding is still said
    empty = explain(figures({}, by_day={}), None, [finding("a1", "blue", 1)])
    assert empty.summary_zh == "尚无费用；规则预警「规则repeat-exam」：发现a1"


def test_the_findings_listed_are_bounded_and_the_total_counts_them_all() -> None:
    many = [finding(f"a{n:02d}", "blue", n) for n in range(15)]
    explanation = explain(figures({"drug": "100"}), None, many, findings_total=40)
    assert [found.alert_id for found in explanation.rule_findings] == [
        f"a{n:02d}" for n in range(14, 4, -1)
    ]
    assert explanation.rule_findings_total == 40
    assert explanation.summary_en.endswith("found a14 (40 rule alerts in all)")
