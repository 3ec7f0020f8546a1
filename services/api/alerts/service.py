"""Alert history and the live feed's polling read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.access.principal import Principal
from services.api.alerts.schemas import AlertList, AlertOut
from services.api.cases.schemas import Contributor
from services.api.cases.service import money
from services.api.pagination import decode_int_cursor, encode_cursor
from services.casecost.pricing import LEVEL_RANK
from services.storage.models import AlertRecord


def to_out(record: AlertRecord) -> AlertOut:
    return AlertOut(
        alert_id=record.alert_id,
        hospital_id=record.hospital_id,
        case_id=record.case_id,
        department=record.department,
        drg_code=record.drg_code,
        level=record.level,
        previous_level=record.previous_level,
        transition=record.transition,
        total_cost=money(record.total_cost) or "0.00",
        standard_cost=money(record.standard_cost) or "0.00",
        ratio=str(record.ratio),
        event_id=record.event_id,
        occurred_at=record.occurred_at,
        raised_at=record.raised_at,
        top_contributors=[Contributor(**item) for item in record.top_contributors],
    )


def _filtered(
    query: Select[Any],
    *,
    hospital_id: str | None,
    case_id: str | None,
    department: str | None,
    level: str | None,
    min_level: str | None = None,
    since: datetime | None = None,
) -> Select[Any]:
    if hospital_id:
        query = query.where(AlertRecord.hospital_id == hospital_id)
    if case_id:
        query = query.where(AlertRecord.case_id == case_id)
    if department:
        query = query.where(AlertRecord.department == department)
    if level:
        query = query.where(AlertRecord.level.in_(level.split(",")))
    if min_level:
        wanted = [name for name, rank in LEVEL_RANK.items() if rank >= LEVEL_RANK[min_level]]
        query = query.where(AlertRecord.level.in_(wanted))
    if since:
        query = query.where(AlertRecord.raised_at >= since)
    return query


async def list_alerts(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str | None,
    case_id: str | None,
    department: str | None,
    level: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> AlertList:
    """Newest first; the cursor is the sequence of the last alert on the page."""
    query = _filtered(
        select(AlertRecord).where(
            caller.scope_clause(AlertRecord.hospital_id, AlertRecord.department)
        ),
        hospital_id=hospital_id,
        case_id=case_id,
        department=department,
        level=level,
        since=since,
    )
    before = decode_int_cursor(cursor)
    if before is not None:
        query = query.where(AlertRecord.seq < before)
    rows = (await db_session.scalars(query.order_by(AlertRecord.seq.desc()).limit(limit + 1))).all()
    next_cursor = encode_cursor([rows[limit - 1].seq]) if len(rows) > limit else None
    return AlertList(items=[to_out(row) for row in rows[:limit]], next_cursor=next_cursor)


async def alerts_after(
    *,
    db_session: AsyncSession,
    caller: Principal,
    after_seq: int,
    hospital_id: str | None,
    department: str | None,
    min_level: str | None,
    limit: int = 500,
) -> list[tuple[int, AlertOut]]:
    """Alerts with a sequence above `after_seq`, oldest first (the live feed)."""
    query = _filtered(
        select(AlertRecord).where(
            AlertRecord.seq > after_seq,
            caller.scope_clause(AlertRecord.hospital_id, AlertRecord.department),
        ),
        hospital_id=hospital_id,
        case_id=None,
        department=department,
        level=None,
        min_level=min_level,
    )
    rows = (await db_session.scalars(query.order_by(AlertRecord.seq).limit(limit))).all()
    return [(row.seq, to_out(row)) for row in rows]


async def last_seq(*, db_session: AsyncSession) -> int:
    from sqlalchemy import func

    return int(await db_session.scalar(select(func.coalesce(func.max(AlertRecord.seq), 0))) or 0)
