"""The alert lifecycle over HTTP: acknowledge, resolve, review; an alert; a case's timeline.

The state machine is documented in lifecycle.py. Out-of-scope alerts and cases are 404,
a role without the permission is 403, a transition not allowed now is 409.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.access.principal import Principal
from services.alerting.alerts import actions as alert_actions
from services.alerting.alerts.lifecycle import Acknowledge, Command, Resolve, Review
from services.alerting.alerts.schemas import (
    AcknowledgeIn,
    AlertDetail,
    CaseTimeline,
    ResolveIn,
    ReviewIn,
)
from services.api.alerts.schemas import ExplainedAlert
from services.api.cases import service as case_service
from services.api.deps import NowDep, SessionDep, TypicalMixesDep, ZoneDep, require
from services.api.openapi import ErrorBody
from services.api.params import AlertId, CaseId, HospitalId

router = APIRouter(tags=["alerts"])
Reader = Annotated[Principal, Depends(require("alerts:read"))]
Acknowledger = Annotated[Principal, Depends(require("alerts:acknowledge"))]
Resolver = Annotated[Principal, Depends(require("alerts:resolve"))]
Reviewer = Annotated[Principal, Depends(require("alerts:review"))]
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "the caller's role does not allow this"}
}
ALERT_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such alert, or outside the caller's scope"}
}
NOT_NOW: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "not allowed from the alert's current status, which the detail names",
    }
}
ACTION_ERRORS = FORBIDDEN | ALERT_NOT_FOUND | NOT_NOW


@router.get(
    "/v1/alerts/{alert_id}", response_model=ExplainedAlert, responses=FORBIDDEN | ALERT_NOT_FOUND
)
async def get_alert(
    alert_id: AlertId,
    db_session: SessionDep,
    caller: Reader,
    typical_mixes: TypicalMixesDep,
    now: NowDep,
    zone: ZoneDep,
) -> ExplainedAlert:
    """One alert with its lifecycle status, every action on it, and the explanation of its
    case as the case stands now."""
    detail = await alert_actions.get(db_session=db_session, alert_id=alert_id, principal=caller)
    explanation = await case_service.explain(
        db_session=db_session,
        caller=caller,
        hospital_id=detail.hospital_id,
        case_id=detail.case_id,
        typical_mixes=typical_mixes,
        now=now,
        zone=zone,
    )
    return ExplainedAlert(**detail.model_dump(), explanation=explanation)


async def _act(
    db_session: SessionDep, alert_id: str, caller: Principal, command: Command, note: str | None
) -> AlertDetail:
    detail = await alert_actions.act(
        db_session=db_session, alert_id=alert_id, principal=caller, command=command, note=note
    )
    await db_session.commit()
    return detail


@router.post("/v1/alerts/{alert_id}/ack", response_model=AlertDetail, responses=ACTION_ERRORS)
async def acknowledge_alert(
    alert_id: AlertId, body: AcknowledgeIn, db_session: SessionDep, caller: Acknowledger
) -> AlertDetail:
    """Acknowledge an open alert: someone has seen it and is on it."""
    return await _act(db_session, alert_id, caller, Acknowledge(), body.note)


@router.post("/v1/alerts/{alert_id}/resolve", response_model=AlertDetail, responses=ACTION_ERRORS)
async def resolve_alert(
    alert_id: AlertId, body: ResolveIn, db_session: SessionDep, caller: Resolver
) -> AlertDetail:
    """Resolve with the reason for the cost; reasonable overspend goes to review."""
    return await _act(db_session, alert_id, caller, Resolve(body.reason), body.note)


@router.post("/v1/alerts/{alert_id}/review", response_model=AlertDetail, responses=ACTION_ERRORS)
async def review_alert(
    alert_id: AlertId, body: ReviewIn, db_session: SessionDep, caller: Reviewer
) -> AlertDetail:
    """The insurance office approves a resolution under review, or returns it."""
    return await _act(db_session, alert_id, caller, Review(body.decision), body.note)


@router.get(
    "/v1/hospitals/{hospital_id}/cases/{case_id}/timeline",
    response_model=CaseTimeline,
    responses=FORBIDDEN
    | {404: {"model": ErrorBody, "description": "no such case, or outside the caller's scope"}},
)
async def case_timeline(
    hospital_id: HospitalId, case_id: CaseId, db_session: SessionDep, caller: Reader
) -> CaseTimeline:
    """The case's alerts and the actions on them, oldest first."""
    return await alert_actions.timeline(
        db_session=db_session, hospital_id=hospital_id, case_id=case_id, principal=caller
    )
