"""Indicators of discharged cases, the hospitals in scope, and daily alert counts.

Read from the case projection and the alert records the worker writes (the state the
alerts come from); the DRG weight from the price book the worker prices with, looked
up as the core looks it up: the case's group on its local day of admission.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, CompoundSelect, Text, cast, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.api.cases.service import los_days
from services.api.indicators.exceptions import UnknownHospital
from services.api.indicators.schemas import (
    DailyAlertList,
    DailyAlerts,
    HospitalList,
    HospitalOut,
    IndicatorGroup,
    IndicatorReport,
    IndicatorsOut,
)
from services.casecost import indicators as formulas
from services.casecost.indicators import ZERO, DischargedCase, DrgTally, Indicators
from services.casecost.pricing import PriceBook
from services.casecost.targets import day_start
from services.storage.models import (
    AlertRecord,
    CaseRecord,
    CatalogueRecord,
    DepartmentRecord,
    DepartmentTarget,
)

GroupBy = Literal["department", "drg"]
ALERT_LEVELS = ("blue", "yellow", "red")


def previous_period(first: date, last: date) -> tuple[date, date]:
    """The period of the same length that ends the day before `first`."""
    previous_last = first - timedelta(days=1)
    return previous_last - (last - first), previous_last


def ensure_visible(caller: Principal, hospital_id: str) -> None:
    """404 for a hospital outside the caller's scope, as for one that does not exist."""
    if not caller.sees_hospital(hospital_id):
        raise UnknownHospital(f"no hospital {hospital_id}")


def discharged_between(
    caller: Principal, hospital_id: str, first: date, last: date, zone: tzinfo
) -> list[ColumnElement[bool]]:
    """Conditions: discharged cases with a priced DRG, discharged on a local day from
    `first` to `last`, in the caller's scope."""
    return [
        CaseRecord.hospital_id == hospital_id,
        CaseRecord.status == "discharged",
        CaseRecord.drg_code.is_not(None),
        CaseRecord.standard_cost.is_not(None),
        CaseRecord.discharged_at >= day_start(first, zone),
        CaseRecord.discharged_at < day_start(last + timedelta(days=1), zone),
        caller.scope_clause(CaseRecord.hospital_id, CaseRecord.department),
    ]


def _filters(department: str | None, drg_code: str | None) -> list[ColumnElement[bool]]:
    conditions = []
    if department:
        conditions.append(CaseRecord.department == department)
    if drg_code:
        conditions.append(CaseRecord.drg_code == drg_code)
    return conditions


def _out(figures: Indicators) -> dict[str, Any]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "cases": figures.cases,
        "total_weight": text(figures.total_weight),
        "cmi": text(figures.cmi),
        "total_cost": text(figures.total_cost),
        "total_standard": text(figures.total_standard),
        "budget_execution": text(figures.budget_execution),
        "surplus": text(figures.surplus),
        "cost_consumption_index": text(figures.cost_consumption_index),
        "regional_cost_consumption_index": text(figures.regional_cost_consumption_index),
        "time_consumption_index": text(figures.time_consumption_index),
        "mean_los_days": text(figures.mean_los_days),
        "drug_share": text(figures.drug_share),
        "consumables_share": text(figures.consumables_share),
        "cost_by_category_share": {k: str(v) for k, v in figures.cost_by_category_share.items()},
        "high_ratio_cases": figures.high_ratio_cases,
        "high_ratio_share": text(figures.high_ratio_share),
        "low_ratio_cases": figures.low_ratio_cases,
        "low_ratio_share": text(figures.low_ratio_share),
        "cost_per_case": text(figures.cost_per_case),
        "previous_cost_per_case": text(figures.previous_cost_per_case),
        "cost_per_case_change": text(figures.cost_per_case_change),
    }


def _group_key(group_by: GroupBy | None, department: str | None, drg_code: str) -> str | None:
    """The group a case falls in: its department, its DRG, or "" when not grouped."""
    if group_by == "department":
        return department
    return drg_code if group_by == "drg" else ""


def _per_case(found: tuple[int, Decimal] | None) -> Decimal | None:
    return None if found is None else found[1] / found[0]


async def report(
    *,
    db_session: AsyncSession,
    caller: Principal,
    price_book: PriceBook,
    zone: tzinfo,
    hospital_id: str,
    first: date,
    last: date,
    department: str | None,
    drg_code: str | None,
    group_by: GroupBy | None,
) -> IndicatorReport:
    """The indicators of the discharged, priced cases of local days `first` to `last`,
    overall and by department or DRG, with the period before for cost per case."""
    ensure_visible(caller, hospital_id)
    narrowing = _filters(department, drg_code)
    tallies, drg_names = await _tallies(
        db_session=db_session,
        price_book=price_book,
        zone=zone,
        hospital_id=hospital_id,
        conditions=[*discharged_between(caller, hospital_id, first, last, zone), *narrowing],
        group_by=group_by,
    )
    before_first, before_last = previous_period(first, last)
    earlier = await _totals(
        db_session=db_session,
        conditions=[
            *discharged_between(caller, hospital_id, before_first, before_last, zone),
            *narrowing,
        ],
        group_by=group_by,
    )
    groups: list[IndicatorGroup] = []
    if group_by is not None:
        names: dict[str | None, str | None]
        if group_by == "department":
            names = dict(await _department_names(db_session=db_session, hospital_id=hospital_id))
        else:
            names = {code: name for code, name in drg_names.items()}
        for key in sorted(tallies, key=lambda key: (key is None, key or "")):
            figures = formulas.summarize(tallies[key], _per_case(earlier.get(key)))
            groups.append(IndicatorGroup(key=key, name=names.get(key), **_out(figures)))
    earlier_cases = sum(count for count, _ in earlier.values())
    earlier_cost = sum((total for _, total in earlier.values()), ZERO)
    overall = formulas.summarize(
        formulas.merged(tallies.values()),
        _per_case((earlier_cases, earlier_cost) if earlier_cases else None),
    )
    return IndicatorReport(
        hospital_id=hospital_id,
        from_=first,
        to=last,
        overall=IndicatorsOut(**_out(overall)),
        groups=groups,
    )


async def _tallies(
    *,
    db_session: AsyncSession,
    price_book: PriceBook,
    zone: tzinfo,
    hospital_id: str,
    conditions: list[ColumnElement[bool]],
    group_by: GroupBy | None,
) -> tuple[dict[str | None, dict[str, DrgTally]], dict[str, str]]:
    """The cases' sums by group and DRG, read in one pass; and each DRG's name."""
    query = select(
        CaseRecord.department,
        CaseRecord.drg_code,
        CaseRecord.drg_name,
        CaseRecord.standard_cost,
        CaseRecord.total_cost,
        CaseRecord.ratio_flag,
        # the JSON as text, decoded by orjson: a month of a large hospital is 10,000 cases
        cast(CaseRecord.cost_by_category, Text).label("cost_by_category"),
        CaseRecord.admitted_at,
        CaseRecord.discharged_at,
        CaseRecord.avg_los_days,
    ).where(*conditions)
    now = datetime.now(UTC)
    weights: dict[tuple[str, date], tuple[Decimal | None, Decimal | None]] = {}
    drg_names: dict[str, str] = {}
    tallies: dict[str | None, dict[str, DrgTally]] = {}
    for row in await db_session.execute(query):
        # the weight as the standard came: the case's group on its local admission day
        pricing_day = price_book.local_day(row.admitted_at or row.discharged_at)
        known = (row.drg_code, pricing_day)
        if known not in weights:
            group = price_book.group(hospital_id, row.drg_code, pricing_day)
            weights[known] = (None, None) if group is None else (group.weight, group.mean_cost)
        if row.drg_name:
            drg_names.setdefault(row.drg_code, row.drg_name)
        by_drg = tallies.setdefault(_group_key(group_by, row.department, row.drg_code), {})
        sums = by_drg.get(row.drg_code)
        if sums is None:
            sums = by_drg[row.drg_code] = DrgTally()
        sums.add(
            DischargedCase(
                department=row.department,
                drg_code=row.drg_code,
                standard_cost=row.standard_cost,
                total_cost=row.total_cost,
                weight=weights[known][0],
                mean_cost=weights[known][1],
                los_days=los_days(row.admitted_at, row.discharged_at, now, zone),
                avg_los_days=row.avg_los_days,
                cost_by_category={
                    k: Decimal(v) for k, v in orjson.loads(row.cost_by_category).items()
                },
                ratio_flag=row.ratio_flag,
            )
        )
    return tallies, drg_names


async def _totals(
    *,
    db_session: AsyncSession,
    conditions: list[ColumnElement[bool]],
    group_by: GroupBy | None,
) -> dict[str | None, tuple[int, Decimal]]:
    """Cases and total cost by group."""
    query = select(CaseRecord.department, CaseRecord.drg_code, CaseRecord.total_cost).where(
        *conditions
    )
    totals: dict[str | None, tuple[int, Decimal]] = {}
    for row in await db_session.execute(query):
        key = _group_key(group_by, row.department, row.drg_code)
        count, total = totals.get(key, (0, ZERO))
        totals[key] = (count + 1, total + row.total_cost)
    return totals


async def _department_names(
    *, db_session: AsyncSession, hospital_id: str
) -> Sequence[tuple[str, str | None]]:
    """Each named department's name: Chinese, else English."""
    rows = await db_session.execute(
        select(DepartmentRecord.code, DepartmentRecord.name_zh, DepartmentRecord.name_en).where(
            DepartmentRecord.hospital_id == hospital_id
        )
    )
    return [(row.code, row.name_zh or row.name_en) for row in rows]


async def hospitals(*, db_session: AsyncSession, caller: Principal) -> HospitalList:
    """The hospitals in the caller's scope that have cases, reference data or targets."""
    known: CompoundSelect[Any] = union(
        select(CaseRecord.hospital_id).distinct(),
        select(CatalogueRecord.hospital_id).where(CatalogueRecord.hospital_id.is_not(None)),
        select(DepartmentRecord.hospital_id),
        select(DepartmentTarget.hospital_id),
    )
    found = {str(row[0]) for row in await db_session.execute(known) if row[0] is not None}
    return HospitalList(
        items=[HospitalOut(hospital_id=h) for h in sorted(found) if caller.sees_hospital(h)]
    )


async def daily_alerts(
    *,
    db_session: AsyncSession,
    caller: Principal,
    zone: tzinfo,
    today: date,
    hospital_id: str,
    days: int,
    department: str | None,
) -> DailyAlertList:
    """Per local day of the last `days` (today included): how many cases escalated to
    each level, by the moment of the event that made them cross (zeros included)."""
    ensure_visible(caller, hospital_id)
    first = today - timedelta(days=days - 1)
    query = select(AlertRecord.occurred_at, AlertRecord.level, AlertRecord.case_id).where(
        AlertRecord.hospital_id == hospital_id,
        AlertRecord.kind == "level",
        AlertRecord.transition == "escalated",
        AlertRecord.level.in_(ALERT_LEVELS),
        AlertRecord.occurred_at >= day_start(first, zone),
        AlertRecord.occurred_at < day_start(today + timedelta(days=1), zone),
        caller.scope_clause(AlertRecord.hospital_id, AlertRecord.department),
    )
    if department:
        query = query.where(AlertRecord.department == department)
    escalated = {
        (row.occurred_at.astimezone(zone).date(), row.level, row.case_id)
        for row in await db_session.execute(query)
    }
    counts = {(day, level): 0 for day in _days(first, today) for level in ALERT_LEVELS}
    for day, level, _ in escalated:
        counts[(day, level)] += 1
    return DailyAlertList(
        items=[
            DailyAlerts(
                day=day,
                red=counts[(day, "red")],
                yellow=counts[(day, "yellow")],
                blue=counts[(day, "blue")],
            )
            for day in _days(first, today)
        ]
    )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
