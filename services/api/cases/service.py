"""Read the case projection: one case, a page of cases, and the open cases' summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, Numeric, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.alerting.alerts.schemas import Contributor
from services.api.cases import explanation as case_explanation
from services.api.cases.explanation import TypicalMixes
from services.api.cases.schemas import (
    CaseDetail,
    CaseList,
    CaseOrder,
    CaseOut,
    DailyCost,
    DepartmentSummary,
    DoctorCost,
    Explanation,
    LevelSummary,
    OpenCasesSummary,
    Thresholds,
)
from services.api.exceptions import CaseNotFound
from services.casecost.pricing import CENT, PriceBook, money
from services.storage.exceptions import BadCursor
from services.storage.models import CaseRecord
from services.storage.pagination import decode_cursor, encode_cursor

SUMMARY_LEVELS = ("none", "blue", "yellow", "red", "unpriced")
ZERO = Decimal("0.00")


def los_days(
    admitted_at: datetime | None,
    discharged_at: datetime | None,
    now: datetime,
    local: tzinfo = UTC,
) -> int | None:
    """Inpatient days as hospitals count them: local calendar days, a same-day stay is one."""
    if admitted_at is None:
        return None
    end = discharged_at or now
    return max(1, (end.astimezone(local).date() - admitted_at.astimezone(local).date()).days)


def stay_days(record: CaseRecord, now: datetime) -> int | None:
    """The case's `los_days` (so far, for an open case), at its own UTC offset."""
    local = timezone(timedelta(minutes=record.utc_offset_minutes or 0))
    return los_days(record.admitted_at, record.discharged_at, now, local)


def days_over_avg_stay(record: CaseRecord, now: datetime) -> Decimal | None:
    """Length of stay (so far, for an open case) minus the DRG's average stay.

    Worked out when read: an open stay grows by a day every day, events or not. Days are
    counted at the case's own UTC offset, as `los_days` counts them.
    """
    days = stay_days(record, now)
    if days is None or record.avg_los_days is None:
        return None
    return Decimal(days) - record.avg_los_days


def _local(moment: datetime | None, local: tzinfo) -> datetime | None:
    return None if moment is None else moment.astimezone(local)


def drg_name_en(record: CaseRecord, price_book: PriceBook) -> str | None:
    """The English name of the case's DRG group, from the catalogue that prices the case
    (the one in force on its day of admission), where that catalogue gives one.

    Read from the price book the API keeps in memory, so neither the worker nor the
    query pays for it; None unless the group there still has the name the case shows."""
    moment = record.admitted_at or record.last_event_at
    if record.drg_code is None or moment is None:
        return None
    group = price_book.group(record.hospital_id, record.drg_code, price_book.local_day(moment))
    if group is None or group.name != record.drg_name:
        return None
    return group.name_en


def to_out(record: CaseRecord, now: datetime, price_book: PriceBook) -> CaseOut:
    local = timezone(timedelta(minutes=record.utc_offset_minutes or 0))
    over = days_over_avg_stay(record, now)
    return CaseOut(
        hospital_id=record.hospital_id,
        case_id=record.case_id,
        status=record.status,
        department=record.department,
        drg_code=record.drg_code,
        drg_name=record.drg_name,
        drg_name_en=drg_name_en(record, price_book),
        insurance_scheme=record.insurance_scheme,
        standard_cost=money(record.standard_cost),
        total_cost=money(record.total_cost) or "0.00",
        ratio=None if record.ratio is None else str(record.ratio),
        level=record.level,
        ratio_flag=record.ratio_flag,
        cost_by_category={
            k: str(Decimal(v).quantize(CENT)) for k, v in record.cost_by_category.items()
        },
        top_contributors=[Contributor(**item) for item in record.top_contributors],
        admitted_at=_local(record.admitted_at, local),
        discharged_at=_local(record.discharged_at, local),
        los_days=stay_days(record, now),
        avg_los_days=None if record.avg_los_days is None else str(record.avg_los_days),
        events_applied=record.events_applied,
        last_event_at=_local(record.last_event_at, local),
        projected_total=money(record.projected_total),
        projected_ratio=None if record.projected_ratio is None else str(record.projected_ratio),
        days_over_avg_stay=None if over is None else str(over),
    )


def threshold_text(value: Decimal) -> str:
    """A threshold ratio as the design writes it, at least two places ("0.90", "0.925")."""
    text = str(value.normalize())
    if "E" in text or len(text.partition(".")[2]) < 2:
        return str(value.quantize(CENT))
    return text


def daily_costs(
    cost_by_day: dict[str, str] | None, admitted_day: date | None, discharged_day: date | None
) -> list[DailyCost]:
    """Each local day of the stay, from admission (or the first cost line, if earlier) to
    discharge (or the last cost line, if later), days without costs at zero, with the
    running total. Empty while the case has no cost line."""
    amounts = {
        date.fromisoformat(day): Decimal(amount) for day, amount in (cost_by_day or {}).items()
    }
    if not amounts:
        return []
    days: list[DailyCost] = []
    cumulative = Decimal(0)
    day = min(amounts) if admitted_day is None else min(min(amounts), admitted_day)
    last = max(amounts) if discharged_day is None else max(max(amounts), discharged_day)
    while day <= last:
        amount = amounts.get(day, Decimal(0))
        cumulative += amount
        days.append(
            DailyCost(
                day=day,
                amount=str(amount.quantize(CENT)),
                cumulative=str(cumulative.quantize(CENT)),
            )
        )
        day += timedelta(days=1)
    return days


def cost_by_doctor(cost_by_orderer: dict[str, str] | None) -> list[DoctorCost]:
    """Cost per orderer, largest first (lines that named nobody under null)."""
    ranked = sorted(
        ((orderer, Decimal(amount)) for orderer, amount in (cost_by_orderer or {}).items()),
        key=lambda entry: (-entry[1], entry[0]),
    )
    return [
        DoctorCost(ordered_by=orderer or None, amount=str(amount.quantize(CENT)))
        for orderer, amount in ranked
    ]


async def get_record(
    *, db_session: AsyncSession, caller: Principal, hospital_id: str, case_id: str
) -> CaseRecord:
    """The case row, if it exists and is in the caller's scope (404 either way otherwise)."""
    record = None
    if caller.sees_hospital(hospital_id):
        record = await db_session.get(CaseRecord, (hospital_id, case_id))
    if record is None or not caller.sees_department(hospital_id, record.department):
        raise CaseNotFound(f"no case {case_id} in hospital {hospital_id}")
    return record


async def get(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str,
    case_id: str,
    price_book: PriceBook,
    typical_mixes: TypicalMixes,
    now: datetime,
    zone: tzinfo,
) -> CaseDetail:
    """One case, with the thresholds in force for it, its daily costs (by the local days of
    `zone`, the hospitals' time zone, as the worker counts them), cost per orderer, and
    the explanation of its cost."""
    record = await get_record(
        db_session=db_session, caller=caller, hospital_id=hospital_id, case_id=case_id
    )
    thresholds = price_book.thresholds_for(hospital_id, record.drg_code)
    case = to_out(record, now, price_book)
    return CaseDetail(
        **case.model_dump(),
        thresholds=Thresholds(
            blue=threshold_text(thresholds.blue),
            yellow=threshold_text(thresholds.yellow),
            red=threshold_text(thresholds.red),
        ),
        daily_costs=daily_costs(
            record.cost_by_day,
            None if record.admitted_at is None else record.admitted_at.astimezone(zone).date(),
            None if record.discharged_at is None else record.discharged_at.astimezone(zone).date(),
        ),
        cost_by_doctor=cost_by_doctor(record.cost_by_orderer),
        explanation=await case_explanation.explain_record(
            db_session=db_session,
            mixes=typical_mixes,
            record=record,
            caller=caller,
            los_days=case.los_days,
            today=now.astimezone(zone).date(),
            zone=zone,
        ),
    )


async def explain(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str,
    case_id: str,
    typical_mixes: TypicalMixes,
    now: datetime,
    zone: tzinfo,
) -> Explanation | None:
    """The explanation of a case as it stands now, if the caller may read the case; None
    otherwise (the case's own scope, not the alert's, decides), and without a case id."""
    if not case_id or not caller.may("cases:read"):
        return None
    try:
        record = await get_record(
            db_session=db_session, caller=caller, hospital_id=hospital_id, case_id=case_id
        )
    except CaseNotFound:
        return None
    return await case_explanation.explain_record(
        db_session=db_session,
        mixes=typical_mixes,
        record=record,
        caller=caller,
        los_days=stay_days(record, now),
        today=now.astimezone(zone).date(),
        zone=zone,
    )


def _sort_key(order: CaseOrder, now: datetime) -> ColumnElement[Any]:
    """The SQL value a page is sorted by (numeric on every backend)."""
    if order == "days_over_avg_stay":
        # the local day now at the case's offset, as days since 1970-01-01 (see projector)
        seconds = int(now.timestamp())
        today = (literal(seconds) + CaseRecord.utc_offset_minutes * 60) // 86400
        stay = func.coalesce(CaseRecord.discharged_day, today) - CaseRecord.admitted_day
        los = case((stay < 1, 1), else_=stay)
        return cast(los, Numeric(20, 4)) - cast(CaseRecord.avg_los_days, Numeric(20, 4))
    column = {
        "ratio": CaseRecord.ratio,
        "projected_ratio": CaseRecord.projected_ratio,
        "total_cost": CaseRecord.total_cost,
    }[order]
    return cast(column, Numeric(20, 4))


def _sort_value(record: CaseRecord, order: CaseOrder, now: datetime) -> Decimal | None:
    if order == "days_over_avg_stay":
        if record.admitted_day is None:
            return None
        return days_over_avg_stay(record, now)
    value: Decimal | None = getattr(record, order)
    return value


def _after(cursor: str | None, order: CaseOrder | None) -> tuple[Decimal | None, str] | None:
    """The (sort value, case id) a page starts after; a cursor of another order is refused."""
    if order is None:
        return None
    key = decode_cursor(cursor, 3)
    if key is None:
        return None
    name, value, case_id = key
    if name != order or not isinstance(value, str) or not isinstance(case_id, str):
        raise BadCursor("cursor: not a cursor of this order")
    if value == "":
        return None, case_id
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise BadCursor("cursor: not a cursor this service issued") from None
    if not number.is_finite():
        raise BadCursor("cursor: not a cursor this service issued")
    return number, case_id


async def list_cases(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str,
    department: str | None,
    level: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    order: CaseOrder | None = None,
    now: datetime,
    price_book: PriceBook,
) -> CaseList:
    """A page of cases: by case id, or by `order` descending (nulls last, then case id)."""
    if not caller.sees_hospital(hospital_id):
        raise CaseNotFound(f"no hospital {hospital_id}")
    query = select(CaseRecord).where(
        CaseRecord.hospital_id == hospital_id,
        caller.scope_clause(CaseRecord.hospital_id, CaseRecord.department),
    )
    if department:
        query = query.where(CaseRecord.department == department)
    if level:
        query = query.where(CaseRecord.level.in_(level.split(",")))
    if status:
        query = query.where(CaseRecord.status == status)
    if order is None:
        after = decode_cursor(cursor, 1)
        if after is not None:
            query = query.where(CaseRecord.case_id > str(after[0]))
        query = query.order_by(CaseRecord.case_id)
    else:
        key = _sort_key(order, now)
        start = _after(cursor, order)
        if start is not None:
            value, after_id = start
            if value is None:
                query = query.where(key.is_(None), CaseRecord.case_id > after_id)
            else:
                bound = literal(value, Numeric(20, 4))
                query = query.where(
                    or_(
                        key < bound,
                        and_(key == bound, CaseRecord.case_id > after_id),
                        key.is_(None),
                    )
                )
        query = query.order_by(case((key.is_(None), 1), else_=0), key.desc(), CaseRecord.case_id)
    rows = (await db_session.scalars(query.limit(limit + 1))).all()
    items = [to_out(row, now, price_book) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        if order is None:
            next_cursor = encode_cursor([last.case_id])
        else:
            value = _sort_value(last, order, now)
            next_cursor = encode_cursor([order, "" if value is None else str(value), last.case_id])
    return CaseList(items=items, next_cursor=next_cursor)


@dataclass
class _Tally:
    cases: int = 0
    total_cost: Decimal = ZERO
    standard_cost: Decimal = ZERO
    projected_total: Decimal = ZERO
    projected_overspend: Decimal = ZERO


async def open_cases_summary(
    *, db_session: AsyncSession, caller: Principal, hospital_id: str, department: str | None
) -> OpenCasesSummary:
    """The open cases in the caller's scope by level, the money already over standard, and
    the departments ranked by the overspend their cases are projected to reach.

    A case with no projection (no standard or no average stay) counts at its cost so far
    in its department's projected total, and adds no projected overspend.
    """
    if not caller.sees_hospital(hospital_id):
        raise CaseNotFound(f"no hospital {hospital_id}")
    query = select(
        CaseRecord.level,
        CaseRecord.department,
        CaseRecord.total_cost,
        CaseRecord.standard_cost,
        CaseRecord.projected_total,
    ).where(
        CaseRecord.hospital_id == hospital_id,
        CaseRecord.status == "open",
        caller.scope_clause(CaseRecord.hospital_id, CaseRecord.department),
    )
    if department:
        query = query.where(CaseRecord.department == department)
    by_level = {level: _Tally() for level in SUMMARY_LEVELS}
    by_department: dict[str | None, _Tally] = {}
    at_risk = ZERO
    for level, case_department, total, standard, projected in (
        await db_session.execute(query)
    ).all():
        tally = by_level.setdefault(level, _Tally())
        tally.cases += 1
        tally.total_cost += total
        unit = by_department.setdefault(case_department, _Tally())
        unit.cases += 1
        unit.total_cost += total
        unit.projected_total += total if projected is None else projected
        if standard is not None:
            tally.standard_cost += standard
            unit.standard_cost += standard
            at_risk += max(ZERO, total - standard)
            if projected is not None:
                unit.projected_overspend += max(ZERO, projected - standard)
    ranked = sorted(
        by_department.items(),
        key=lambda entry: (-entry[1].projected_overspend, entry[0] is None, entry[0] or ""),
    )
    return OpenCasesSummary(
        by_level={
            level: LevelSummary(
                cases=tally.cases,
                total_cost=str(tally.total_cost.quantize(CENT)),
                standard_cost=str(tally.standard_cost.quantize(CENT)),
            )
            for level, tally in by_level.items()
        },
        money_at_risk=str(at_risk.quantize(CENT)),
        departments=[
            DepartmentSummary(
                department=name,
                open_cases=unit.cases,
                total_cost=str(unit.total_cost.quantize(CENT)),
                standard_cost=str(unit.standard_cost.quantize(CENT)),
                projected_total=str(unit.projected_total.quantize(CENT)),
                projected_overspend=str(unit.projected_overspend.quantize(CENT)),
            )
            for name, unit in ranked
        ],
    )
