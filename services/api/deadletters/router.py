"""GET /v1/dead-letters: every event that could not be processed, with its reason."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select

from services.access.principal import Principal
from services.api.deps import SessionDep, require
from services.api.params import Cursor, HospitalFilter
from services.storage.models import DeadLetter
from services.storage.pagination import decode_int_cursor, encode_cursor

router = APIRouter(tags=["dead letters"])


class DeadLetterOut(BaseModel):
    id: int
    stage: Literal["ingest", "stream"]
    hospital_id: str | None
    case_id: str | None
    event_id: str | None
    reason: str
    errors: list[dict[str, Any]]
    payload: str
    received_at: datetime


class DeadLetterList(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


@router.get("/v1/dead-letters", response_model=DeadLetterList)
async def list_dead_letters(
    db_session: SessionDep,
    caller: Annotated[Principal, Depends(require("dead_letters:read"))],
    hospital_id: HospitalFilter = None,
    stage: Literal["ingest", "stream"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> DeadLetterList:
    """Refused and unprocessable events, newest first."""
    query = select(DeadLetter)
    if not caller.all_hospitals:
        # a dead letter whose hospital could not be read belongs to no one's scope but admin's
        query = query.where(DeadLetter.hospital_id.in_(sorted(caller.hospitals)))
    if hospital_id:
        query = query.where(DeadLetter.hospital_id == hospital_id)
    if stage:
        query = query.where(DeadLetter.stage == stage)
    before = decode_int_cursor(cursor)
    if before is not None:
        query = query.where(DeadLetter.id < before)
    rows = (await db_session.scalars(query.order_by(DeadLetter.id.desc()).limit(limit + 1))).all()
    items = [
        DeadLetterOut(
            id=row.id,
            stage=row.stage,
            hospital_id=row.hospital_id,
            case_id=row.case_id,
            event_id=row.event_id,
            reason=row.reason,
            errors=row.errors,
            payload=row.payload,
            received_at=row.received_at,
        )
        for row in rows[:limit]
    ]
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return DeadLetterList(items=items, next_cursor=next_cursor)
