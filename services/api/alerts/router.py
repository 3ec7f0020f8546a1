"""Alert history and the live server-sent-event feed."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from services.access.principal import Principal
from services.alerting.alerts import service as alert_service
from services.alerting.alerts.schemas import ALERT_KINDS, AlertList, RuleFindingCounts
from services.api.alerts import live
from services.api.deps import CallerCheckDep, SessionDep, require
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
KINDS = "|".join(ALERT_KINDS)
KindList = Annotated[str | None, Query(pattern=rf"^({KINDS})(,({KINDS}))*$")]
_STATUS = "open|acknowledged|under_review|returned|resolved"
StatusList = Annotated[str | None, Query(pattern=rf"^({_STATUS})(,({_STATUS}))*$")]


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
    kind: KindList = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> AlertList:
    """Alert history, newest first; `status=under_review` is the insurance office's queue,
    `kind=forecast` the cases projected to overspend."""
    return await alert_service.list_alerts(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        case_id=case_id,
        department=department,
        level=level,
        since=since,
        status=status,
        kind=kind,
        limit=limit,
        cursor=cursor,
    )


@router.get("/v1/alerts/rule-counts", response_model=RuleFindingCounts)
async def rule_finding_counts(
    db_session: SessionDep,
    caller: AlertReader,
    since: Annotated[Moment, Query()],
    hospital_id: HospitalFilter = None,
    department: DepartmentFilter = None,
) -> RuleFindingCounts:
    """What each monitoring rule found since `since` (e.g. the hospital's local midnight):
    findings, how many are still with the department, and the latest one's level."""
    return await alert_service.rule_finding_counts(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        department=department,
        since=since,
    )


@router.get(
    "/v1/alerts/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        429: {
            "description": "the caller holds as many live streams as it may, or sent too"
            " many wrong keys; retry after Retry-After seconds"
        },
    },
)
async def stream_alerts(
    request: Request,
    caller: AlertReader,
    recheck: CallerCheckDep,
    hospital_id: HospitalFilter = None,
    department: DepartmentFilter = None,
    min_level: Literal["none", "blue", "yellow", "red"] | None = None,
    kind: KindList = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Live alerts as server-sent events; `id:` resumes through Last-Event-ID.

    The stream ends when the caller's key is revoked, its identity disabled or its scope
    changed (checked every few seconds); one identity holds a bounded number open (429).
    """
    sessions = request.app.state.sessions
    release = request.app.state.stream_slots.take(caller.identity_id)
    try:
        if last_event_id is not None:
            cursor = last_event_id
        else:
            async with sessions() as db_session:
                cursor = await alert_service.last_seq(db_session=db_session)
    except BaseException:
        release()
        raise
    events = live.alert_events(
        sessions=sessions,
        caller=caller,
        recheck=recheck,
        is_disconnected=lambda: _gone(request),
        feed=request.app.state.alert_feed,
        cursor=cursor,
        hospital_id=hospital_id,
        department=department,
        min_level=min_level,
        kind=kind,
    )
    return live.HeldStream(events, release=release, feed=request.app.state.alert_feed)


async def _gone(request: Request) -> bool:
    """The client went, or the API is stopping (the client reconnects elsewhere)."""
    return bool(getattr(request.app.state, "stopping", False)) or await request.is_disconnected()
