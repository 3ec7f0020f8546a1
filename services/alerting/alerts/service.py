"""Alert history and the live feed's polling read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, Subquery, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.alerting.alerts.schemas import (
    AlertList,
    AlertListItem,
    AlertOut,
    Contributor,
    RuleFindingCount,
    RuleFindingCounts,
)
from services.casecost.pricing import LEVEL_RANK, money
from services.storage.models import AlertAction, AlertRecord
from services.storage.pagination import decode_int_cursor, encode_cursor


def to_out(record: AlertRecord) -> AlertOut:
    return AlertOut(
        alert_id=record.alert_id,
        kind=record.kind,
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
        projected_total=money(record.projected_total),
        projected_ratio=None if record.projected_ratio is None else str(record.projected_ratio),
        target_period=record.target_period,
        target_measure=record.target_measure,
        rule_id=record.rule_id,
        rule_version=record.rule_version,
        rule_period=record.rule_period,
        detail=None
        if record.detail is None
        else {k: v for k, v in record.detail.items() if k != "rule_name"},
        rule_name=None if record.detail is None else record.detail.get("rule_name"),
        text_zh=record.text_zh,
        text_en=record.text_en,
    )


def _filtered(
    query: Select[*tuple[Any, ...]],
    *,
    hospital_id: str | None,
    case_id: str | None,
    department: str | None,
    level: str | None,
    min_level: str | None = None,
    since: datetime | None = None,
    kind: str | None = None,
) -> Select[*tuple[Any, ...]]:
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
    if kind:
        query = query.where(AlertRecord.kind.in_(kind.split(",")))
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
    status: str | None = None,
    kind: str | None = None,
) -> AlertList:
    """Newest first, each with its lifecycle status; the cursor is the last alert's sequence."""
    current = _current_status()
    status_column = func.coalesce(current.c.to_status, "open")
    query = _filtered(
        select(AlertRecord, status_column)
        .outerjoin(current, current.c.alert_id == AlertRecord.alert_id)
        .where(caller.scope_clause(AlertRecord.hospital_id, AlertRecord.department)),
        hospital_id=hospital_id,
        case_id=case_id,
        department=department,
        level=level,
        since=since,
        kind=kind,
    )
    if status:
        query = query.where(status_column.in_(status.split(",")))
    before = decode_int_cursor(cursor)
    if before is not None:
        query = query.where(AlertRecord.seq < before)
    rows = (await db_session.execute(query.order_by(AlertRecord.seq.desc()).limit(limit + 1))).all()
    next_cursor = encode_cursor([rows[limit - 1][0].seq]) if len(rows) > limit else None
    items = [
        AlertListItem(**to_out(record).model_dump(), status=record_status)
        for record, record_status in rows[:limit]
    ]
    return AlertList(items=items, next_cursor=next_cursor)


# the statuses in which a finding is still the department's to act on
WITH_THE_DEPARTMENT = ("open", "acknowledged", "returned")


async def rule_finding_counts(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str | None,
    department: str | None,
    since: datetime,
) -> RuleFindingCounts:
    """Per monitoring rule, its findings raised since `since` in the caller's scope: one
    grouped query, however many there are; the rules with most still open first."""
    current = _current_status()
    status_column = func.coalesce(current.c.to_status, "open")
    still_open = func.sum(case((status_column.in_(WITH_THE_DEPARTMENT), 1), else_=0))
    query = _filtered(
        select(
            AlertRecord.rule_id,
            func.count().label("found"),
            still_open.label("open"),
            func.max(AlertRecord.seq).label("latest"),
        )
        .outerjoin(current, current.c.alert_id == AlertRecord.alert_id)
        .where(caller.scope_clause(AlertRecord.hospital_id, AlertRecord.department))
        .group_by(AlertRecord.rule_id),
        hospital_id=hospital_id,
        case_id=None,
        department=department,
        level=None,
        since=since,
        kind="rule",
    )
    groups = (await db_session.execute(query)).all()
    latest = {
        record.seq: record
        for record in await db_session.scalars(
            select(AlertRecord).where(AlertRecord.seq.in_([group.latest for group in groups]))
        )
    }
    items = []
    for group in groups:
        record = latest[group.latest]
        items.append(
            RuleFindingCount(
                rule_id=group.rule_id or "",
                rule_name=None if record.detail is None else record.detail.get("rule_name"),
                level=record.level,
                found=int(group.found),
                open=int(group.open or 0),
                latest_raised_at=record.raised_at,
            )
        )
    items.sort(key=lambda item: (-item.open, -item.found, item.rule_id))
    return RuleFindingCounts(since=since, items=items)


def _current_status() -> Subquery:
    """Each acted-on alert's status: the `to_status` of its last action (no row: open)."""
    last = (
        select(AlertAction.alert_id, func.max(AlertAction.step).label("step"))
        .group_by(AlertAction.alert_id)
        .subquery()
    )
    return (
        select(AlertAction.alert_id, AlertAction.to_status)
        .join(last, (AlertAction.alert_id == last.c.alert_id) & (AlertAction.step == last.c.step))
        .subquery()
    )


async def alerts_after(
    *,
    db_session: AsyncSession,
    caller: Principal,
    after_seq: int,
    hospital_id: str | None,
    department: str | None,
    min_level: str | None,
    limit: int = 500,
    kind: str | None = None,
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
        kind=kind,
    )
    rows = (await db_session.scalars(query.order_by(AlertRecord.seq).limit(limit))).all()
    return [(row.seq, to_out(row)) for row in rows]


async def last_seq(*, db_session: AsyncSession) -> int:
    from sqlalchemy import func

    return int(await db_session.scalar(select(func.coalesce(func.max(AlertRecord.seq), 0))) or 0)
