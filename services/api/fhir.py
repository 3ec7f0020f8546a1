"""POST /v1/fhir: reads the body, hands it to the FHIR intake, answers in FHIR."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.exceptions import NotPermitted
from services.access.principal import Principal
from services.api.deps import ChargeBookDep, PublisherDep, SessionDep, require
from services.api.events import BodyTooLarge, read_body
from services.api.settings import ApiSettings
from services.ingest.exceptions import LedgerUnavailable
from services.ingest.fhir import service as fhir_service
from services.ingest.fhir.exceptions import FhirRefused
from services.ingest.publisher import publish_durable
from services.metrics import INGEST_UNAVAILABLE, count_ingested, count_rejected
from services.storage import dead_letters
from services.storage.engine import is_unavailable
from services.storage.models import DeadLetter

router = APIRouter(tags=["ingest"])
FHIR_JSON = "application/fhir+json"

_request_body: dict[str, Any] = {
    "required": True,
    "content": {
        media: {
            "schema": {
                "type": "object",
                "required": ["resourceType"],
                "description": "an R4 ChargeItem or Encounter, or a batch or transaction"
                " Bundle of them",
            }
        }
        for media in (FHIR_JSON, "application/json")
    },
}
_outcome = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}


@router.post(
    "/v1/fhir",
    status_code=201,
    openapi_extra={"requestBody": _request_body},
    responses={
        200: {
            "description": "a response Bundle (batch or transaction), or a resource that"
            " added nothing new",
            **_outcome,
        },
        201: {
            "description": "the resource's events are durable (Location: the resource)",
            **_outcome,
        },
        400: {
            "description": "not JSON, not a ChargeItem, Encounter or batch/transaction"
            " Bundle (OperationOutcome)",
            **_outcome,
        },
        403: {"description": "a resource of a hospital outside the caller's scope"},
        413: {"description": "body too large"},
        422: {"description": "refused, naming each element (OperationOutcome)", **_outcome},
        503: {"description": "cannot make events durable now; retry"},
    },
)
async def post_fhir(
    request: Request,
    db_session: SessionDep,
    publisher: PublisherDep,
    caller: Annotated[Principal, Depends(require("events:write"))],
    charge_book: ChargeBookDep,
) -> JSONResponse:
    """Take an R4 ChargeItem or Encounter, or a batch or transaction Bundle of them.

    Each resource becomes contract v1 events through the same ingest core as
    POST /v1/events (durable before the answer). Every refusal is kept as a dead letter
    with its reason before the answer goes out.
    """
    settings: ApiSettings = request.app.state.settings
    raw = b""
    now = datetime.now(UTC)
    try:
        raw = await read_body(request)
        answer = await fhir_service.submit(
            db_session=db_session,
            raw=raw,
            mapping=request.app.state.fhir_mapping,
            zone=settings.zone,
            now=now,
            bounds=settings.time_bounds,
            sees_hospital=caller.sees_hospital,
            charge_book=charge_book,
            caller_hospital=_sole_hospital(caller),
        )
        await db_session.commit()
    except FhirRefused as refusal:
        await db_session.rollback()
        await _keep(db_session, refusal.letters, reason="invalid")
        raise
    except (BodyTooLarge, NotPermitted) as refusal:
        await db_session.rollback()
        head = refusal.head if isinstance(refusal, BodyTooLarge) else raw
        reason = (
            refusal.message
            if isinstance(refusal, BodyTooLarge)
            else f"forbidden: {refusal.message}"
        )
        await _keep(
            db_session,
            [
                dead_letters.dead_letter(
                    stage="ingest",
                    raw=head.decode("utf-8", "replace"),
                    reason=reason,
                    errors=[{"field": "body", "reason": reason}],
                    now=now,
                    attribute=False,
                )
            ],
            reason="too_large" if isinstance(refusal, BodyTooLarge) else "forbidden",
        )
        raise
    except DBAPIError as error:
        if not is_unavailable(error):
            raise
        INGEST_UNAVAILABLE.inc()
        raise LedgerUnavailable() from error
    except LedgerUnavailable:
        INGEST_UNAVAILABLE.inc()
        raise
    for status, count in answer.counts.items():
        count_ingested("fhir", status, count)
    await publish_durable(publisher, answer.accepted)
    headers = {"Location": answer.location} if answer.location else None
    return JSONResponse(
        answer.body, status_code=answer.status, media_type=FHIR_JSON, headers=headers
    )


def _sole_hospital(caller: Principal) -> str | None:
    """The hospital a caller posts for, when its credential names exactly one."""
    if caller.all_hospitals or len(caller.hospitals) != 1:
        return None
    return next(iter(caller.hospitals))


async def _keep(db_session: AsyncSession, letters: list[DeadLetter], *, reason: str) -> None:
    """Refused input is not silently dropped: keep it, with why, as dead letters."""
    count_rejected("fhir", reason, max(1, len(letters)))
    try:
        db_session.add_all(letters)
        await db_session.commit()
    except Exception:  # noqa: BLE001 - the caller still gets its refusal
        await db_session.rollback()
