"""Department figures: what the department monitoring rules judge, per month.

`department_figures` computes, for each hospital and department with discharged, priced
cases in the months asked, the month's `DepartmentPeriod` (cases, cost per case,
low-ratio cases, and the cost per case of the same month last year and of the previous
month) and, per DRG, its months up to that one (`DrgMonth`). The rule watch
(rulewatch.py) judges the rules over them on a schedule; a rule's dry run
(services/api/rules/dryrun.py) over the current month. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casecost.rules import (
    DepartmentPeriod,
    DepartmentRule,
    DrgMonth,
    DrgOverStandardMonthsRule,
)
from services.casecost.targets import day_start
from services.storage.models import CaseRecord

ZERO = Decimal(0)
CENT = Decimal("0.01")
# the longest run of months a rule may ask for (DrgOverStandardMonthsParams.months)
MAX_DRG_MONTHS = 24
LAST_YEAR = 12


@dataclass(frozen=True, slots=True)
class DepartmentFigures:
    """A department's figures for one month: what the department rules judge."""

    period: DepartmentPeriod
    # per DRG with cases in the month: its months with cases, up to and including the
    # period's, oldest first
    drg_months: dict[str, tuple[DrgMonth, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class _Tally:
    cases: int = 0
    cost: Decimal = ZERO
    standard: Decimal = ZERO
    low_ratio: int = 0

    def add(self, cases: int, cost: Decimal, standard: Decimal, low_ratio: int) -> None:
        self.cases += cases
        self.cost += cost
        self.standard += standard
        self.low_ratio += low_ratio

    @property
    def cost_per_case(self) -> Decimal | None:
        if self.cases == 0:
            return None
        return (self.cost / self.cases).quantize(CENT, rounding=ROUND_HALF_UP)


def month_of(day: date) -> str:
    """2026-11-30 -> "2026-11"."""
    return f"{day:%Y-%m}"


def shift_month(month: str, by: int) -> str:
    """The month `by` months after `month`: ("2026-01", -1) -> "2025-12"."""
    number = int(month[:4]) * 12 + int(month[5:7]) - 1 + by
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def _first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def _months_between(first: str, last: str) -> list[str]:
    months = [first]
    while months[-1] < last:
        months.append(shift_month(months[-1], 1))
    return months


def drg_run_length(rules: Sequence[DepartmentRule]) -> int:
    """How many months of a DRG the enabled rules look at (1 without such a rule)."""
    return max(
        (r.params.months for r in rules if isinstance(r, DrgOverStandardMonthsRule) and r.enabled),
        default=1,
    )


async def department_figures(
    *,
    db_session: AsyncSession,
    hospital_ids: Collection[str] | None,
    months: Sequence[str],
    now: datetime,
    zone: tzinfo,
    drg_months: int = 3,
) -> list[DepartmentFigures]:
    """The figures of each department with discharged, priced cases in each of `months`
    ("2026-11"; local days of `zone`, cases discharged before `now`), of the hospitals
    given (all if None), with `drg_months` months of each DRG up to the month's.

    Cases count as the indicators count them: discharged, with a DRG and a standard,
    by their local day of discharge; low-ratio are those flagged "low".
    """
    if not months or (hospital_ids is not None and not hospital_ids):
        return []
    run = min(max(drg_months, 1), MAX_DRG_MONTHS)
    first = min(shift_month(min(months), -max(LAST_YEAR, run - 1)), min(months))
    window = _months_between(first, max(months))
    ends = [day_start(_first_day(shift_month(month, 1)), zone) for month in window]
    start = day_start(_first_day(first), zone)
    end = min(ends[-1], now)
    # the month of each case: the first month whose end is after its discharge
    month_index = case(
        *((CaseRecord.discharged_at < month_end, index) for index, month_end in enumerate(ends)),
        else_=len(ends) - 1,
    )
    low_ratio = case((CaseRecord.ratio_flag == "low", 1), else_=0)
    conditions = [
        CaseRecord.status == "discharged",
        CaseRecord.department.is_not(None),
        CaseRecord.drg_code.is_not(None),
        CaseRecord.standard_cost.is_not(None),
        CaseRecord.discharged_at >= start,
        CaseRecord.discharged_at < end,
    ]
    if hospital_ids is not None:
        conditions.append(CaseRecord.hospital_id.in_(sorted(hospital_ids)))
    columns = (
        CaseRecord.hospital_id,
        CaseRecord.department,
        CaseRecord.drg_code,
        month_index.label("month_index"),
    )
    query: Any
    if db_session.get_bind().dialect.name == "postgresql":
        # NUMERIC sums exactly there: one row per department, DRG and month
        cases = (
            select(
                *columns,
                CaseRecord.total_cost,
                CaseRecord.standard_cost,
                low_ratio.label("low_ratio"),
            )
            .where(*conditions)
            .subquery()
        )
        keys = (cases.c.hospital_id, cases.c.department, cases.c.drg_code, cases.c.month_index)
        query = select(
            *keys,
            func.count(),
            func.sum(cases.c.total_cost),
            func.sum(cases.c.standard_cost),
            func.sum(cases.c.low_ratio),
        ).group_by(*keys)
    else:
        # SQLite sums in floating point: one row per case, its exact values added up here
        query = select(
            *columns, literal(1), CaseRecord.total_cost, CaseRecord.standard_cost, low_ratio
        ).where(*conditions)
    # (hospital, department, month) -> the department's tally, and its tally per DRG
    by_department: dict[tuple[str, str, str], _Tally] = {}
    by_drg: dict[tuple[str, str, str], dict[str, _Tally]] = {}
    for row in await db_session.execute(query):
        hospital_id, department, drg_code, index, count, cost, standard, low = row
        month = window[int(index)]
        figures = (int(count), Decimal(cost), Decimal(standard), int(low))
        key = (hospital_id, department, month)
        by_department.setdefault(key, _Tally()).add(*figures)
        by_drg.setdefault(key, {}).setdefault(drg_code, _Tally()).add(*figures)
    found: list[DepartmentFigures] = []
    for hospital_id, department in sorted({(h, d) for h, d, _ in by_department}):
        for month in sorted(set(months)):
            tally = by_department.get((hospital_id, department, month))
            if tally is None:
                continue
            last_year = by_department.get((hospital_id, department, shift_month(month, -12)))
            previous = by_department.get((hospital_id, department, shift_month(month, -1)))
            period = DepartmentPeriod(
                hospital_id=hospital_id,
                department=department,
                period=month,
                cases=tally.cases,
                cost_per_case=tally.cost_per_case,
                low_ratio_cases=tally.low_ratio,
                last_year_cost_per_case=None if last_year is None else last_year.cost_per_case,
                previous_cost_per_case=None if previous is None else previous.cost_per_case,
            )
            run_months = [
                (earlier, by_drg.get((hospital_id, department, earlier), {}))
                for earlier in _months_between(shift_month(month, 1 - run), month)
            ]
            series = {
                drg_code: tuple(
                    DrgMonth(earlier, t.cases, t.cost, t.standard)
                    for earlier, drgs in run_months
                    if (t := drgs.get(drg_code)) is not None
                )
                for drg_code in sorted(by_drg[(hospital_id, department, month)])
            }
            found.append(DepartmentFigures(period, series))
    return found
