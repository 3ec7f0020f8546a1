"""Alert history and the live server-sent-event feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError

from services.access.principal import Principal
from services.alerting.alerts import service as alert_service
from services.alerting.alerts.schemas import AlertList
from services.api.deps import SessionDep, require
from services.api.params import (
    CaseFilter,
    Cursor,
    DepartmentFilter,
    HospitalFilter,
    LastEventId,
    Moment,
)

router = APIRouter(tags=["alerts"])
AlertReader = Annotated[Principal, Depends(require("alerts:read"))]
LevelList = Annotated[
    str | None, Query(pattern=r"^(none|blue|yellow|red)(,(none|blue|yellow|red))*$")
]
_STATUS = "open|acknowledged|under_review|returned|resolved"
StatusList = Annotated[str | None, Query(pattern=rf"^({_STATUS})(,({_STATUS}))*$")]
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 0.2
UNAVAILABLE_RETRY_SECONDS = 1.0


@router.get("/v1/alerts", response_model=AlertList)
async def list_alerts(
    db_session: SessionDep,
    caller: AlertReader,
    hospital_id: HospitalFilter = None,
    case_id: CaseFilter = None,
    department: DepartmentFilter = None,
    level: LevelList = None,
    since: Annotated[Moment | None, Query()] = None,
    status: StatusList = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> AlertList:
    """Alert history, newest first; `status=under_review` is the insurance office's queue."""
    return await alert_service.list_alerts(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        case_id=case_id,
        department=department,
        level=level,
        since=since,
        status=status,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/v1/alerts/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_alerts(
    request: Request,
    caller: AlertReader,
    hospital_id: HospitalFilter = None,
    department: DepartmentFilter = None,
    min_level: Literal["none", "blue", "yellow", "red"] | None = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Live alerts as server-sent events; `id:` resumes through Last-Event-ID."""
    sessions = request.app.state.sessions
    if last_event_id is not None:
        cursor = last_event_id
    else:
        async with sessions() as db_session:
            cursor = await alert_service.last_seq(db_session=db_session)

    async def events() -> AsyncIterator[str]:
        nonlocal cursor
        yield "retry: 2000\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            try:
                async with sessions() as db_session:
                    batch = await alert_service.alerts_after(
                        db_session=db_session,
                        caller=caller,
                        after_seq=cursor,
                        hospital_id=hospital_id,
                        department=department,
                        min_level=min_level,
                    )
            except (SQLAlchemyError, OSError):
                # the database is away: keep the stream open and try again shortly
                yield ": database unavailable, retrying\n\n"
                await asyncio.sleep(UNAVAILABLE_RETRY_SECONDS)
                continue
            for seq, alert in batch:
                cursor = seq
                yield f"id: {seq}\nevent: alert\ndata: {alert.model_dump_json()}\n\n"
            if batch:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
                quiet_since = time.monotonic()
                yield ": heartbeat\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
