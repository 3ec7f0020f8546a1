"""Read the case projection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.alerting.alerts.schemas import Contributor
from services.api.cases.schemas import CaseList, CaseOut
from services.api.exceptions import CaseNotFound
from services.casecost.pricing import CENT, money
from services.storage.models import CaseRecord
from services.storage.pagination import decode_cursor, encode_cursor


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


def _local(moment: datetime | None, local: tzinfo) -> datetime | None:
    return None if moment is None else moment.astimezone(local)


def to_out(record: CaseRecord, now: datetime) -> CaseOut:
    local = timezone(timedelta(minutes=record.utc_offset_minutes or 0))
    return CaseOut(
        hospital_id=record.hospital_id,
        case_id=record.case_id,
        status=record.status,
        department=record.department,
        drg_code=record.drg_code,
        drg_name=record.drg_name,
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
        los_days=los_days(record.admitted_at, record.discharged_at, now, local),
        avg_los_days=None if record.avg_los_days is None else str(record.avg_los_days),
        events_applied=record.events_applied,
        last_event_at=_local(record.last_event_at, local),
    )


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
    *, db_session: AsyncSession, caller: Principal, hospital_id: str, case_id: str
) -> CaseOut:
    record = await get_record(
        db_session=db_session, caller=caller, hospital_id=hospital_id, case_id=case_id
    )
    return to_out(record, datetime.now(UTC))


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
) -> CaseList:
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
    after = decode_cursor(cursor, 1)
    if after is not None:
        query = query.where(CaseRecord.case_id > str(after[0]))
    rows = (await db_session.scalars(query.order_by(CaseRecord.case_id).limit(limit + 1))).all()
    now = datetime.now(UTC)
    items = [to_out(row, now) for row in rows[:limit]]
    next_cursor = encode_cursor([rows[limit - 1].case_id]) if len(rows) > limit else None
    return CaseList(items=items, next_cursor=next_cursor)
