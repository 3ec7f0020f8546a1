"""The indicators DRG performance evaluation judges a hospital by, over discharged cases.

Pure functions over plain rows (`DischargedCase`), one row per discharged case with a
priced DRG, summed by DRG (`DrgTally`: a period's cases are read once, and a group's
sums merge into the whole); the API reads the rows from the case projection (the state
the alerts come from) and the DRG weight from the price book the case was priced with.

The formulas (the README's "Indicators, departments and targets" works an example of each):
- CMI = sum of weights / cases; total weight = sum of weights.
- cost consumption index = sum over DRGs of k_i x n_i / sum of n_i, where
  k_i = (mean cost per case in DRG i) / (reference mean cost of DRG i); the reference
  is the mean of the cases' own standards (a case's standard depends on its insurance
  scheme), so k_i = sum of costs in DRG i / sum of standards in DRG i.
- regional cost consumption index: the same with the region's mean cost per case of DRG
  i as the reference, where the catalogue gives one (DRGs without one are left out).
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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from services.casecost.pricing import CENT, RATIO_PLACES

WEIGHT_PLACES = Decimal("0.0001")
DAY_PLACES = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(slots=True)  # not frozen: a frozen dataclass is slow to build, and a month is 10,000
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
    # the region's mean cost per case of the DRG, where the catalogue gives one
    mean_cost: Decimal | None = None


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
    regional_cost_consumption_index: Decimal | None
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


@dataclass(slots=True)
class DrgTally:
    """Running sums over the cases of one DRG (within a department, or overall): what
    every indicator is computed from, so that a month of cases is read once."""

    cases: int = 0
    weighed: int = 0  # cases whose weight is known
    weight: Decimal = ZERO
    cost: Decimal = ZERO
    standard: Decimal = ZERO
    stays: int = 0  # cases whose length of stay is known
    stay_days: int = 0
    timed: int = 0  # ... and whose DRG has an average stay
    timed_days: int = 0
    expected_days: Decimal = ZERO
    high: int = 0
    low: int = 0
    by_category: dict[str, Decimal] = field(default_factory=dict)
    regional: int = 0  # cases whose DRG has a regional mean cost
    regional_cost: Decimal = ZERO
    regional_mean: Decimal = ZERO

    def add(self, case: DischargedCase) -> None:
        """Count one case in."""
        self.cases += 1
        if case.weight is not None:
            self.weighed += 1
            self.weight += case.weight
        self.cost += case.total_cost
        self.standard += case.standard_cost
        if case.los_days is not None:
            self.stays += 1
            self.stay_days += case.los_days
            if case.avg_los_days is not None:
                self.timed += 1
                self.timed_days += case.los_days
                self.expected_days += case.avg_los_days
        if case.ratio_flag == "high":
            self.high += 1
        elif case.ratio_flag == "low":
            self.low += 1
        if case.mean_cost is not None:
            self.regional += 1
            self.regional_cost += case.total_cost
            self.regional_mean += case.mean_cost
        by_category = self.by_category
        for category, amount in case.cost_by_category.items():
            by_category[category] = by_category.get(category, ZERO) + amount

    def merge(self, other: DrgTally) -> None:
        """Count another tally's cases in (of the same DRG)."""
        self.cases += other.cases
        self.weighed += other.weighed
        self.weight += other.weight
        self.cost += other.cost
        self.standard += other.standard
        self.stays += other.stays
        self.stay_days += other.stay_days
        self.timed += other.timed
        self.timed_days += other.timed_days
        self.expected_days += other.expected_days
        self.high += other.high
        self.low += other.low
        self.regional += other.regional
        self.regional_cost += other.regional_cost
        self.regional_mean += other.regional_mean
        for category, amount in other.by_category.items():
            self.by_category[category] = self.by_category.get(category, ZERO) + amount


def tally(cases: Iterable[DischargedCase]) -> dict[str, DrgTally]:
    """The cases' sums by DRG."""
    by_drg: dict[str, DrgTally] = {}
    for case in cases:
        drg = by_drg.get(case.drg_code)
        if drg is None:
            drg = by_drg[case.drg_code] = DrgTally()
        drg.add(case)
    return by_drg


def merged(tallies: Iterable[Mapping[str, DrgTally]]) -> dict[str, DrgTally]:
    """Several groups' sums by DRG, as one."""
    by_drg: dict[str, DrgTally] = {}
    for group in tallies:
        for drg_code, sums in group.items():
            into = by_drg.get(drg_code)
            if into is None:
                into = by_drg[drg_code] = DrgTally()
            into.merge(sums)
    return by_drg


def _consumption_index(pairs: Iterable[tuple[int, Decimal, Decimal]]) -> Decimal | None:
    """sum of k_i x n_i / sum of n_i, with k_i = actual_i / reference_i (both sums over
    the DRG's n_i cases, so the means' n_i cancel)."""
    weighted = ZERO
    cases = 0
    for count, actual, reference in pairs:
        if count == 0 or reference <= 0:
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
    return summarize(tally(cases), exact_cost_per_case(previous))


def summarize(by_drg: Mapping[str, DrgTally], previous_per_case: Decimal | None) -> Indicators:
    """Every indicator from the cases' sums by DRG, and the unrounded cost per case of
    the period before."""
    tallies = list(by_drg.values())
    count = sum(t.cases for t in tallies)
    weighed = sum(t.weighed for t in tallies)
    total_weight = sum((t.weight for t in tallies), ZERO)
    total_cost = sum((t.cost for t in tallies), ZERO)
    total_standard = sum((t.standard for t in tallies), ZERO)
    stays = sum(t.stays for t in tallies)
    stay_days = sum(t.stay_days for t in tallies)
    high = sum(t.high for t in tallies)
    low = sum(t.low for t in tallies)
    by_category: dict[str, Decimal] = {}
    for t in tallies:
        for category, amount in t.by_category.items():
            by_category[category] = by_category.get(category, ZERO) + amount
    per_case = total_cost / count if count else None
    change = None
    if per_case is not None and previous_per_case:
        change = _round(per_case / previous_per_case - 1, RATIO_PLACES)
    some = count > 0
    return Indicators(
        cases=count,
        total_weight=_round(total_weight, WEIGHT_PLACES) if weighed else None,
        cmi=_round(total_weight / weighed, WEIGHT_PLACES) if weighed else None,
        total_cost=_round(total_cost, CENT) if some else None,
        total_standard=_round(total_standard, CENT) if some else None,
        budget_execution=_share(total_cost, total_standard) if some else None,
        surplus=_round(total_standard - total_cost, CENT) if some else None,
        cost_consumption_index=_consumption_index((t.cases, t.cost, t.standard) for t in tallies),
        regional_cost_consumption_index=_consumption_index(
            (t.regional, t.regional_cost, t.regional_mean) for t in tallies
        ),
        time_consumption_index=_consumption_index(
            (t.timed, Decimal(t.timed_days), t.expected_days) for t in tallies
        ),
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
