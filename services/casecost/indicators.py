"""The indicators DRG performance evaluation judges a hospital by, over discharged cases.

Pure functions over plain rows (`DischargedCase`), one row per discharged case with a
priced DRG; the API reads the rows from the case projection (the state the alerts come
from) and the DRG weight from the price book the case was priced with.

The formulas (README "Indicators" has a worked example of each):
- CMI = sum of weights / cases; total weight = sum of weights.
- cost consumption index = sum over DRGs of k_i x n_i / sum of n_i, where
  k_i = (mean cost per case in DRG i) / (reference mean cost of DRG i); the reference
  is the mean of the cases' own standards (a case's standard depends on its insurance
  scheme), so k_i = sum of costs in DRG i / sum of standards in DRG i.
- time consumption index: the same with the mean length of stay against the DRG's
  average stay (the mean of the cases' average stays); DRGs without an average stay are
  left out of it.
- budget execution = sum of costs / sum of standards; surplus = sum of (standard - cost),
  negative is overspend.
- drug share, consumables share: that category's cost / total cost.
- high-ratio and low-ratio cases: as the cost core flagged them at discharge.
- cost per case = total cost / cases, and its change against the previous period.

Every figure is exact Decimal arithmetic, rounded once at the end: money to the cent,
ratios, shares and indices to 4 places, weights to 4 places, days to 2 places (half up).
A figure with nothing to divide by is None.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from services.casecost.pricing import CENT, RATIO_PLACES

WEIGHT_PLACES = Decimal("0.0001")
DAY_PLACES = Decimal("0.01")
ZERO = Decimal(0)
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class DischargedCase:
    """One discharged case with a priced DRG, as the indicators need it."""

    department: str | None
    drg_code: str
    standard_cost: Decimal
    total_cost: Decimal
    # None when the price book no longer holds the case's group (left out of CMI)
    weight: Decimal | None
    # None without an admission time (left out of the mean stay and the time index)
    los_days: int | None
    avg_los_days: Decimal | None
    cost_by_category: dict[str, Decimal] = field(default_factory=dict)
    ratio_flag: str | None = None  # "high" | "low" | None, as the core set it


@dataclass(frozen=True, slots=True)
class Indicators:
    cases: int
    total_weight: Decimal | None
    cmi: Decimal | None
    total_cost: Decimal | None
    total_standard: Decimal | None
    budget_execution: Decimal | None
    surplus: Decimal | None
    cost_consumption_index: Decimal | None
    time_consumption_index: Decimal | None
    mean_los_days: Decimal | None
    drug_share: Decimal | None
    consumables_share: Decimal | None
    cost_by_category_share: dict[str, Decimal]
    high_ratio_cases: int
    high_ratio_share: Decimal | None
    low_ratio_cases: int
    low_ratio_share: Decimal | None
    cost_per_case: Decimal | None
    previous_cost_per_case: Decimal | None
    cost_per_case_change: Decimal | None


def _round(value: Decimal, places: Decimal) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


def _share(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    return _round(Decimal(part) / Decimal(whole), RATIO_PLACES)


def _consumption_index(by_drg: dict[str, tuple[int, Decimal, Decimal]]) -> Decimal | None:
    """sum of k_i x n_i / sum of n_i, with k_i = actual_i / reference_i (both sums over
    the DRG's n_i cases, so the means' n_i cancel)."""
    weighted = ZERO
    cases = 0
    for count, actual, reference in by_drg.values():
        if reference <= 0:
            continue
        weighted += actual / reference * count
        cases += count
    if cases == 0:
        return None
    return _round(weighted / cases, RATIO_PLACES)


def exact_cost_per_case(cases: Sequence[DischargedCase]) -> Decimal | None:
    """Total cost / cases, unrounded (None without cases)."""
    if not cases:
        return None
    return sum((case.total_cost for case in cases), ZERO) / len(cases)


def compute(cases: Sequence[DischargedCase], previous: Sequence[DischargedCase] = ()) -> Indicators:
    """Every indicator of `cases`; `previous` are the cases of the period before (for
    the period-on-period change of cost per case)."""
    count = len(cases)
    weights = [case.weight for case in cases if case.weight is not None]
    total_weight = sum(weights, ZERO)
    total_cost = sum((case.total_cost for case in cases), ZERO)
    total_standard = sum((case.standard_cost for case in cases), ZERO)

    cost_by_drg: dict[str, tuple[int, Decimal, Decimal]] = {}
    time_by_drg: dict[str, tuple[int, Decimal, Decimal]] = {}
    stays = 0
    stay_days = 0
    by_category: dict[str, Decimal] = {}
    for case in cases:
        n, cost, standard = cost_by_drg.get(case.drg_code, (0, ZERO, ZERO))
        cost_by_drg[case.drg_code] = (n + 1, cost + case.total_cost, standard + case.standard_cost)
        if case.los_days is not None:
            stays += 1
            stay_days += case.los_days
            if case.avg_los_days is not None:
                n, days, expected = time_by_drg.get(case.drg_code, (0, ZERO, ZERO))
                time_by_drg[case.drg_code] = (
                    n + 1,
                    days + case.los_days,
                    expected + case.avg_los_days,
                )
        for category, amount in case.cost_by_category.items():
            by_category[category] = by_category.get(category, ZERO) + amount

    high = sum(1 for case in cases if case.ratio_flag == "high")
    low = sum(1 for case in cases if case.ratio_flag == "low")
    per_case = exact_cost_per_case(cases)
    previous_per_case = exact_cost_per_case(previous)
    change = None
    if per_case is not None and previous_per_case:
        change = _round(per_case / previous_per_case - 1, RATIO_PLACES)
    some = count > 0
    return Indicators(
        cases=count,
        total_weight=_round(total_weight, WEIGHT_PLACES) if weights else None,
        cmi=_round(total_weight / len(weights), WEIGHT_PLACES) if weights else None,
        total_cost=_round(total_cost, CENT) if some else None,
        total_standard=_round(total_standard, CENT) if some else None,
        budget_execution=_share(total_cost, total_standard) if some else None,
        surplus=_round(total_standard - total_cost, CENT) if some else None,
        cost_consumption_index=_consumption_index(cost_by_drg),
        time_consumption_index=_consumption_index(time_by_drg),
        mean_los_days=_round(Decimal(stay_days) / stays, DAY_PLACES) if stays else None,
        drug_share=_share(by_category.get("drug", ZERO), total_cost) if some else None,
        consumables_share=(
            _share(by_category.get("consumable", ZERO), total_cost) if some else None
        ),
        cost_by_category_share={
            category: share
            for category, amount in sorted(by_category.items())
            if (share := _share(amount, total_cost)) is not None
        },
        high_ratio_cases=high,
        high_ratio_share=_share(high, count),
        low_ratio_cases=low,
        low_ratio_share=_share(low, count),
        cost_per_case=None if per_case is None else _round(per_case, CENT),
        previous_cost_per_case=(
            None if previous_per_case is None else _round(previous_per_case, CENT)
        ),
        cost_per_case_change=change,
    )


def grouped(
    cases: Iterable[DischargedCase], key: Callable[[DischargedCase], K]
) -> dict[K, list[DischargedCase]]:
    """The cases split by `key`, in first-seen order."""
    groups: dict[K, list[DischargedCase]] = {}
    for case in cases:
        groups.setdefault(key(case), []).append(case)
    return groups
