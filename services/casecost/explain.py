"""Why a case costs what it does: the explanation a department head can act on.

`explain(case, typical)` is a pure function over a case's figures (`CaseFigures`) and the
typical category mix of its DRG (`TypicalMix`, or None where there is none). It returns:

- cost by category against the typical mix: the case's share of cost, the typical share,
  the difference in share points and the *excess*, the money beyond what the typical
  share of this case's total would be (amount - typical share x total);
- the top items and the top ordering doctors by amount, with their share of cost;
- the day the cost accelerated (`accelerated_day`): the first local day of the stay, after
  the first `ACCELERATION_BASELINE_DAYS`, whose net charges exceed `ACCELERATION_FACTOR`
  times the mean net charges of every day before it in the stay (days without charges
  count as zero); never while that mean is zero or less (there is no trend to break);
- the main driver, and one sentence in Chinese and one in English that state it.

The driver is the first of these that applies:
1. `category`: with a typical mix, the category whose share exceeds its typical share by
   at least `CATEGORY_MARGIN` (5 share points) and whose excess money is the largest;
2. `item`: the costliest item, if it is at least `ITEM_SHARE` (20%) of the cost;
3. `day`: the day the cost accelerated;
4. `stay`: a stay longer than the DRG's average stay;
5. `largest_category`: the category that costs the most.
A case with no positive cost has no driver. The sentences of `category` and `item` name
the costliest item (of that category) and the doctor who ordered the most on the case
(cost is kept per doctor for the whole case, not per item).

The case's rule findings (`RuleFinding`: what the monitoring rules raised on it) come
with it, newest first, at most `RULE_FINDINGS_SHOWN`. When there are any, the sentences go
on, after the driver, with the most severe of them (red before yellow before blue; the
newest of equals): its rule's name and its own sentence, and how many there are in all.

Shares are rounded to 4 places and money to the cent (half up), once, at the end; the
excess is worked out from the typical share as published (4 places), so that a reader
can redo it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from services.casecost.pricing import CENT, LEVEL_RANK, RATIO_PLACES

ACCELERATION_FACTOR = Decimal(2)
ACCELERATION_BASELINE_DAYS = 2
CATEGORY_MARGIN = Decimal("0.05")
ITEM_SHARE = Decimal("0.20")
TOP_ITEMS = 5
TOP_ORDERERS = 3
RULE_FINDINGS_SHOWN = 10
ZERO = Decimal(0)

CATEGORY_ZH = {
    "drug": "药品",
    "consumable": "耗材",
    "exam": "检查",
    "lab": "检验",
    "procedure": "手术治疗",
    "bed": "床位",
    "nursing": "护理",
    "other": "其他",
}
# as the subject of "... are 62% of cost"
CATEGORY_EN = {
    "drug": "drugs",
    "consumable": "consumables",
    "exam": "exams",
    "lab": "lab tests",
    "procedure": "procedures",
    "bed": "bed charges",
    "nursing": "nursing charges",
    "other": "other charges",
}

DriverKind = Literal["category", "item", "day", "stay", "largest_category"]


@dataclass(frozen=True, slots=True)
class TypicalMix:
    """The typical share of cost by category of a DRG, and where it comes from."""

    shares: Mapping[str, Decimal]
    cases: int  # how many cases it was taken from
    source: Literal["hospital"] = "hospital"


@dataclass(frozen=True, slots=True)
class ItemLine:
    item_code: str
    item_name: str
    category: str
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CaseFigures:
    """What the explanation is worked out from: the case as it stands."""

    drg_code: str | None
    total_cost: Decimal
    cost_by_category: Mapping[str, Decimal]
    cost_by_day: Mapping[date, Decimal]  # net cost per local day
    admitted_day: date | None
    items: Sequence[ItemLine]  # the top contributors (any order)
    cost_by_orderer: Mapping[str, Decimal]  # "" for lines that named no orderer
    los_days: int | None
    avg_los_days: Decimal | None


@dataclass(frozen=True, slots=True)
class CategoryCost:
    category: str
    amount: Decimal
    share: Decimal | None  # None while the case has no positive cost
    typical_share: Decimal | None
    difference: Decimal | None  # share - typical_share, in share points (4 places)
    excess: Decimal | None  # amount - typical_share x total, to the cent


@dataclass(frozen=True, slots=True)
class ItemShare:
    item: ItemLine
    share: Decimal | None


@dataclass(frozen=True, slots=True)
class OrdererCost:
    ordered_by: str
    amount: Decimal
    share: Decimal | None


@dataclass(frozen=True, slots=True)
class Acceleration:
    day: date
    amount: Decimal  # that day's net charges
    baseline: Decimal  # the mean net charges of the days before it, to the cent


@dataclass(frozen=True, slots=True)
class Driver:
    kind: DriverKind
    category: str | None = None
    item: ItemLine | None = None
    day: date | None = None


@dataclass(frozen=True, slots=True)
class RuleFinding:
    """A rule alert of the case: which rule (and version) found what, and when."""

    alert_id: str
    rule_id: str
    rule_version: int
    rule_name_zh: str
    rule_name_en: str
    severity: str  # blue | yellow | red
    text_zh: str
    text_en: str
    raised_at: datetime
    occurred_at: datetime  # of the event that raised it (when the worker raised it: raised_at)


@dataclass(frozen=True, slots=True)
class Explanation:
    categories: tuple[CategoryCost, ...]
    typical: TypicalMix | None
    top_items: tuple[ItemShare, ...]
    top_orderers: tuple[OrdererCost, ...]
    accelerated: Acceleration | None
    driver: Driver | None
    summary_zh: str
    summary_en: str
    rule_findings: tuple[RuleFinding, ...] = ()
    rule_findings_total: int = 0  # the case's findings in all (the list is bounded)


def explain(
    case: CaseFigures,
    typical: TypicalMix | None,
    findings: Sequence[RuleFinding] = (),
    findings_total: int | None = None,
) -> Explanation:
    """The case's cost by category against `typical`, its top items and doctors, the day
    its cost accelerated, its main driver, its rule `findings` (newest first, bounded),
    and the two sentences that state the driver and then the most severe finding.

    `findings` need not be all of them: the newest `RULE_FINDINGS_SHOWN` and the most
    severe are enough, with `findings_total` saying how many there are in all."""
    total_findings = len(findings) if findings_total is None else findings_total
    total = case.total_cost
    categories = _categories(case, typical)
    items = sorted(case.items, key=lambda item: (-item.amount, item.item_code))
    top_items = tuple(
        ItemShare(item, _share(item.amount, total)) for item in items[:TOP_ITEMS] if item.amount > 0
    )
    orderers = sorted(
        ((name, amount) for name, amount in case.cost_by_orderer.items() if name and amount > 0),
        key=lambda entry: (-entry[1], entry[0]),
    )
    top_orderers = tuple(
        OrdererCost(name, amount.quantize(CENT, ROUND_HALF_UP), _share(amount, total))
        for name, amount in orderers[:TOP_ORDERERS]
    )
    accelerated = accelerated_day(case.cost_by_day, case.admitted_day)
    driver = _driver(case, typical, categories, top_items, accelerated)
    summary_zh, summary_en = _sentences(
        case, driver, categories, top_items, top_orderers, accelerated
    )
    if findings:
        zh, en = _finding_sentences(most_severe(findings), total_findings)
        summary_zh, summary_en = f"{summary_zh}；{zh}", f"{summary_en}; {en}"
    newest = sorted(findings, key=lambda found: (found.raised_at, found.alert_id), reverse=True)
    return Explanation(
        categories=categories,
        typical=typical,
        top_items=top_items,
        top_orderers=top_orderers,
        accelerated=accelerated,
        driver=driver,
        summary_zh=summary_zh,
        summary_en=summary_en,
        rule_findings=tuple(newest[:RULE_FINDINGS_SHOWN]),
        rule_findings_total=total_findings,
    )


def most_severe(findings: Sequence[RuleFinding]) -> RuleFinding:
    """The finding of the highest severity; the newest of equals."""
    return max(
        findings,
        key=lambda found: (LEVEL_RANK.get(found.severity, 0), found.raised_at, found.alert_id),
    )


def _finding_sentences(found: RuleFinding, total: int) -> tuple[str, str]:
    zh = f"规则预警「{found.rule_name_zh}」：{found.text_zh}"
    en = f'rule alert "{found.rule_name_en}": {found.text_en}'
    if total > 1:
        zh += f"（共 {total} 条规则预警）"
        en += f" ({total} rule alerts in all)"
    return zh, en


def accelerated_day(
    cost_by_day: Mapping[date, Decimal], admitted_day: date | None
) -> Acceleration | None:
    """The first day, after the first `ACCELERATION_BASELINE_DAYS` of the stay, whose net
    charges exceed `ACCELERATION_FACTOR` x the mean of every day before it (None if none).

    The stay's days run from admission (or the first cost day, if earlier) to the last
    cost day; days without charges count as zero. While the mean so far is zero or less
    no day can break it.
    """
    if not cost_by_day:
        return None
    first = min(cost_by_day)
    if admitted_day is not None and admitted_day < first:
        first = admitted_day
    last = max(cost_by_day)
    so_far = ZERO
    days = 0
    day = first
    while day <= last:
        amount = cost_by_day.get(day, ZERO)
        if days >= ACCELERATION_BASELINE_DAYS and so_far > 0:
            mean = so_far / days
            if amount > ACCELERATION_FACTOR * mean:
                return Acceleration(
                    day=day,
                    amount=amount.quantize(CENT, ROUND_HALF_UP),
                    baseline=mean.quantize(CENT, ROUND_HALF_UP),
                )
        so_far += amount
        days += 1
        day += timedelta(days=1)
    return None


def _share(part: Decimal, whole: Decimal) -> Decimal | None:
    if whole <= 0:
        return None
    return (part / whole).quantize(RATIO_PLACES, ROUND_HALF_UP)


def _categories(case: CaseFigures, typical: TypicalMix | None) -> tuple[CategoryCost, ...]:
    """Every category the case or its typical mix has, by amount (largest first)."""
    total = case.total_cost
    typical_shares = {} if typical is None else typical.shares
    names = set(case.cost_by_category) | {c for c, share in typical_shares.items() if share > 0}
    rows = []
    for category in names:
        amount = case.cost_by_category.get(category, ZERO)
        share = _share(amount, total)
        typical_share = None if typical is None else typical_shares.get(category, ZERO)
        difference = excess = None
        if typical_share is not None and total > 0:
            difference = (amount / total - typical_share).quantize(RATIO_PLACES, ROUND_HALF_UP)
            excess = (amount - typical_share * total).quantize(CENT, ROUND_HALF_UP)
        rows.append(
            CategoryCost(
                category=category,
                amount=amount.quantize(CENT, ROUND_HALF_UP),
                share=share,
                typical_share=typical_share,
                difference=difference,
                excess=excess,
            )
        )
    rows.sort(key=lambda row: (-row.amount, row.category))
    return tuple(rows)


def _driver(
    case: CaseFigures,
    typical: TypicalMix | None,
    categories: Sequence[CategoryCost],
    top_items: Sequence[ItemShare],
    accelerated: Acceleration | None,
) -> Driver | None:
    """The first rule of the module's list that applies, on exact (unrounded) shares."""
    total = case.total_cost
    if total <= 0:
        return None
    if typical is not None:
        # excess money = (share - typical share) x total: within one case the largest
        # excess is the largest difference
        over = [
            (amount - typical.shares.get(category, ZERO) * total, category)
            for category, amount in case.cost_by_category.items()
            if amount / total - typical.shares.get(category, ZERO) >= CATEGORY_MARGIN
        ]
        if over:
            return Driver("category", category=max(over)[1])
    if top_items and top_items[0].item.amount >= ITEM_SHARE * total:
        item = top_items[0].item
        return Driver("item", category=item.category, item=item)
    if accelerated is not None:
        return Driver("day", day=accelerated.day)
    if (
        case.los_days is not None
        and case.avg_los_days is not None
        and case.los_days > case.avg_los_days
    ):
        return Driver("stay")
    if not categories:  # a cost with no category to show it by: nothing to point at
        return None
    return Driver("largest_category", category=categories[0].category)


def _money(amount: Decimal) -> str:
    return f"{amount.quantize(CENT, ROUND_HALF_UP):f}"


def _percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal(1), ROUND_HALF_UP):f}%"


def _quantity(quantity: Decimal) -> str:
    return f"{quantity.normalize():f}"


def _drg(case: CaseFigures) -> str:
    return case.drg_code or "?"


def _sentences(
    case: CaseFigures,
    driver: Driver | None,
    categories: Sequence[CategoryCost],
    top_items: Sequence[ItemShare],
    top_orderers: Sequence[OrdererCost],
    accelerated: Acceleration | None,
) -> tuple[str, str]:
    if driver is None:
        return "尚无费用", "no cost yet"
    doctor_zh = doctor_en = ""
    if top_orderers:
        doctor = top_orderers[0].ordered_by
        doctor_zh, doctor_en = f"；开单最多的医生 {doctor}", f"; top ordering doctor {doctor}"
    if driver.kind in ("category", "largest_category"):
        row = next(row for row in categories if row.category == driver.category)
        zh_name = CATEGORY_ZH.get(row.category, row.category)
        en_name = CATEGORY_EN.get(row.category, row.category)
        share = _percent(row.share or ZERO)
        if driver.kind == "category":
            typical = _percent(row.typical_share or ZERO)
            zh = f"{zh_name}占费用 {share}（{_drg(case)} 本院同组典型 {typical}）"
            en = f"{en_name} are {share} of cost against {typical} typical for {_drg(case)}"
        else:
            zh = f"{zh_name}费用最多，占 {share}"
            en = f"{en_name} cost the most, {share} of cost"
        in_category = [entry.item for entry in top_items if entry.item.category == row.category]
        if in_category:
            item = in_category[0]
            zh += (
                f"；主要为{item.item_name} ×{_quantity(item.quantity)}（{_money(item.amount)} 元）"
            )
            en += f"; mostly {_quantity(item.quantity)} x {item.item_name} ({_money(item.amount)})"
        return zh + doctor_zh, en + doctor_en
    if driver.kind == "item":
        assert driver.item is not None
        item, share = driver.item, _percent(top_items[0].share or ZERO)
        zh = (
            f"最大单项为{item.item_name} ×{_quantity(item.quantity)}，"
            f"{_money(item.amount)} 元，占费用 {share}"
        )
        en = (
            f"the costliest item is {_quantity(item.quantity)} x {item.item_name}, "
            f"{_money(item.amount)}, {share} of cost"
        )
        return zh + doctor_zh, en + doctor_en
    if driver.kind == "day":
        assert accelerated is not None
        day = accelerated.day.isoformat()
        return (
            f"费用自 {day} 起加速：当日 {_money(accelerated.amount)} 元，"
            f"此前日均 {_money(accelerated.baseline)} 元",
            f"cost accelerated on {day}: {_money(accelerated.amount)} that day against "
            f"{_money(accelerated.baseline)} a day before",
        )
    avg = f"{case.avg_los_days}"
    return (
        f"住院 {case.los_days} 天，超过 {_drg(case)} 平均住院日 {avg} 天",
        f"a stay of {case.los_days} days against {avg} on average for {_drg(case)}",
    )
