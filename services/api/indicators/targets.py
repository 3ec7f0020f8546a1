"""Departments (codes from the cases, names from the insurance office) and the targets
the office sets each department for a year or a month, with progress against them."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.api.indicators.exceptions import UnknownTarget
from services.api.indicators.schemas import (
    DepartmentIn,
    DepartmentList,
    DepartmentOut,
    FiguresOut,
    PaceOut,
    ProgressItem,
    ProgressReport,
    TargetFiguresOut,
    TargetIn,
    TargetList,
    TargetOut,
)
from services.api.indicators.service import discharged_between, ensure_visible
from services.casecost import targets as pacing
from services.casecost.pricing import money
from services.casecost.targets import Figures, Period
from services.storage.models import CaseRecord, DepartmentRecord, DepartmentTarget


def _department_out(record: DepartmentRecord) -> DepartmentOut:
    return DepartmentOut(code=record.code, name_zh=record.name_zh, name_en=record.name_en)


async def departments(
    *, db_session: AsyncSession, caller: Principal, hospital_id: str
) -> DepartmentList:
    """Every department code seen in the hospital's cases, and every named one, in scope."""
    ensure_visible(caller, hospital_id)
    seen = await db_session.scalars(
        select(CaseRecord.department)
        .where(
            CaseRecord.hospital_id == hospital_id,
            CaseRecord.department.is_not(None),
            caller.scope_clause(CaseRecord.hospital_id, CaseRecord.department),
        )
        .distinct()
    )
    found = {code: DepartmentOut(code=code, name_zh=None, name_en=None) for code in seen if code}
    named = await db_session.scalars(
        select(DepartmentRecord).where(
            DepartmentRecord.hospital_id == hospital_id,
            caller.scope_clause(DepartmentRecord.hospital_id, DepartmentRecord.code),
        )
    )
    for record in named:
        found[record.code] = _department_out(record)
    return DepartmentList(items=[found[code] for code in sorted(found)])


async def name_department(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str,
    code: str,
    names: DepartmentIn,
    now: datetime,
) -> DepartmentOut:
    """Set (or clear) a department's Chinese and English names."""
    ensure_visible(caller, hospital_id)
    record = await db_session.get(DepartmentRecord, (hospital_id, code))
    if record is None:
        record = DepartmentRecord(hospital_id=hospital_id, code=code)
        db_session.add(record)
    record.name_zh = names.name_zh
    record.name_en = names.name_en
    record.updated_by = caller.name
    record.updated_at = now
    await db_session.flush()
    return _department_out(record)


def _target_out(record: DepartmentTarget) -> TargetOut:
    return TargetOut(
        hospital_id=record.hospital_id,
        department=record.department,
        period=record.period,
        cases=record.cases,
        cost_per_case=money(record.cost_per_case),
        total_cost=money(record.total_cost),
        updated_by=record.updated_by,
        updated_at=record.updated_at,
    )


async def set_target(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str,
    department: str,
    period: Period,
    target: TargetIn,
    now: datetime,
) -> TargetOut:
    """Set or adjust a department's targets for a period (every measure is replaced)."""
    ensure_visible(caller, hospital_id)
    record = await db_session.get(DepartmentTarget, (hospital_id, department, period.text))
    if record is None:
        record = DepartmentTarget(
            hospital_id=hospital_id, department=department, period=period.text
        )
        db_session.add(record)
    record.cases = target.cases
    record.cost_per_case = target.cost_per_case
    record.total_cost = target.total_cost
    record.updated_by = caller.name
    record.updated_at = now
    await db_session.flush()
    return _target_out(record)


async def delete_target(
    *, db_session: AsyncSession, caller: Principal, hospital_id: str, department: str, period: str
) -> None:
    """Remove a department's targets for a period (404 if none was set)."""
    ensure_visible(caller, hospital_id)
    removed = await db_session.execute(
        delete(DepartmentTarget)
        .where(
            DepartmentTarget.hospital_id == hospital_id,
            DepartmentTarget.department == department,
            DepartmentTarget.period == period,
        )
        .returning(DepartmentTarget.period)
    )
    if removed.first() is None:
        raise UnknownTarget(f"no target for {department} in {period}")


async def list_targets(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str,
    period: str | None,
    department: str | None,
) -> TargetList:
    """The hospital's targets in scope, by department and period."""
    ensure_visible(caller, hospital_id)
    query = select(DepartmentTarget).where(
        DepartmentTarget.hospital_id == hospital_id,
        caller.scope_clause(DepartmentTarget.hospital_id, DepartmentTarget.department),
    )
    if period:
        query = query.where(DepartmentTarget.period == period)
    if department:
        query = query.where(DepartmentTarget.department == department)
    rows = await db_session.scalars(
        query.order_by(DepartmentTarget.department, DepartmentTarget.period)
    )
    return TargetList(items=[_target_out(row) for row in rows])


def _figures(record: DepartmentTarget) -> Figures:
    return Figures(record.cases, record.cost_per_case, record.total_cost)


def _figures_out(figures: Figures) -> FiguresOut:
    return FiguresOut(
        cases=figures.cases,
        cost_per_case=money(figures.cost_per_case),
        total_cost=money(figures.total_cost),
    )


async def progress(
    *,
    db_session: AsyncSession,
    caller: Principal,
    zone: tzinfo,
    today: date,
    hospital_id: str,
    period: Period,
    department: str | None,
) -> ProgressReport:
    """Each department with a target for the period (a month falls back on its year's
    share): what its discharged, priced cases brought so far, the projection to the
    period's end at the pace so far, and the pace of each measure."""
    ensure_visible(caller, hospital_id)
    periods = [period.text, period.year] if period.is_month else [period.text]
    query = select(DepartmentTarget).where(
        DepartmentTarget.hospital_id == hospital_id,
        DepartmentTarget.period.in_(periods),
        caller.scope_clause(DepartmentTarget.hospital_id, DepartmentTarget.department),
    )
    if department:
        query = query.where(DepartmentTarget.department == department)
    chosen: dict[str, tuple[str, Figures]] = {}
    for record in await db_session.scalars(query):
        if record.period == period.text:
            chosen[record.department] = (record.period, _figures(record))
        elif record.department not in chosen:
            chosen[record.department] = (record.period, pacing.month_of_year(_figures(record)))
    totals: dict[str, tuple[int, Decimal]] = {}
    if chosen:
        rows = await db_session.execute(
            select(CaseRecord.department, CaseRecord.total_cost).where(
                *discharged_between(
                    caller, hospital_id, period.first, min(period.last, today), zone
                ),
                CaseRecord.department.in_(sorted(chosen)),
            )
        )
        for row in rows:
            count, total = totals.get(row.department, (0, Decimal(0)))
            totals[row.department] = (count + 1, total + row.total_cost)
    items = []
    for code in sorted(chosen):
        source, target = chosen[code]
        count, total = totals.get(code, (0, Decimal(0)))
        so_far = pacing.actual(count, total)
        projected = pacing.project(period, today, count, total)
        items.append(
            ProgressItem(
                department=code,
                target=TargetFiguresOut(period=source, **_figures_out(target).model_dump()),
                actual=_figures_out(so_far),
                projected=None if projected is None else _figures_out(projected),
                pace=PaceOut(**pacing.pace(target, so_far, projected)),
            )
        )
    return ProgressReport(
        period=period.text,
        elapsed_share=str(pacing.elapsed_share(period, today)),
        items=items,
    )
