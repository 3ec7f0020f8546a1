"""POST /v1/events: thin shell over the ingest service."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.access.principal import Principal
from services.api.deps import PublisherDep, SessionDep, require
from services.api.exceptions import Forbidden
from services.ingest import service as ingest_service
from services.ingest.exceptions import PayloadRejected
from services.ingest.schemas import FieldError, IngestResult
from services.metrics import EVENTS_INGESTED

router = APIRouter(tags=["ingest"])
MAX_BODY_BYTES = 5 * 1024 * 1024
PUBLISH_WAIT_SECONDS = 2.0

_request_body: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Event"},
                    {
                        "type": "object",
                        "required": ["events"],
                        "properties": {
                            "events": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": ingest_service.MAX_BATCH,
                                "items": {"$ref": "#/components/schemas/Event"},
                            }
                        },
                        "additionalProperties": False,
                    },
                ]
            }
        }
    },
}


@router.post(
    "/v1/events",
    status_code=202,
    response_model=IngestResult,
    openapi_extra={"requestBody": _request_body},
    responses={
        403: {"description": "an event of a hospital outside the caller's scope"},
        413: {"description": "body or batch too large"},
        422: {"description": "invalid event, naming each field"},
        503: {"description": "cannot make events durable now; retry"},
    },
)
async def post_events(
    request: Request,
    db_session: SessionDep,
    publisher: PublisherDep,
    caller: Annotated[Principal, Depends(require("events:write"))],
) -> JSONResponse:
    """Accept one event or {"events": [...]}; 202 once every accepted event is durable."""
    body = await _read_body(request)
    items, is_batch = ingest_service.split_body(body)
    _check_hospitals(caller, items)
    try:
        result, accepted = await ingest_service.record(
            db_session=db_session, items=items, is_batch=is_batch
        )
        await db_session.commit()
    except PayloadRejected as rejection:
        await db_session.rollback()
        await _keep_refused(db_session, items, rejection)
        raise
    for status in ("accepted", "duplicate", "rejected"):
        count = sum(r.status == status for r in result.results)
        if count:
            EVENTS_INGESTED.labels(status=status).inc(count)
    if accepted and publisher.started:
        try:
            # durable already: if the broker is slow or away, answer now and let the
            # relay publish (a late acknowledgement only means a harmless duplicate)
            done = await asyncio.wait_for(publisher.publish(accepted), PUBLISH_WAIT_SECONDS)
            publisher.note_published(done)
        except Exception:  # noqa: BLE001 - durable already; the relay publishes later
            pass
    return JSONResponse(result.model_dump(mode="json"), status_code=202)


def _check_hospitals(caller: Principal, items: list[Any]) -> None:
    """A hospital system posts for its own hospitals only; nothing is recorded otherwise."""
    for index, item in enumerate(items):
        hospital_id = item.get("hospital_id") if isinstance(item, dict) else None
        if isinstance(hospital_id, str) and not caller.sees_hospital(hospital_id):
            where = f"events[{index}].hospital_id" if len(items) > 1 else "hospital_id"
            raise Forbidden(f"{where}: this credential may not post events for {hospital_id!r}")


async def _read_body(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadRejected(
            f"body larger than {MAX_BODY_BYTES} bytes",
            status_code=413,
            errors=[FieldError(field="body", reason="too large")],
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadRejected(
                f"body larger than {MAX_BODY_BYTES} bytes",
                status_code=413,
                errors=[FieldError(field="body", reason="too large")],
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise PayloadRejected(
            "the body is not valid JSON",
            errors=[FieldError(field="body", reason=f"invalid JSON: {error}")],
        ) from None


async def _keep_refused(
    db_session: AsyncSession, items: list[Any], rejection: PayloadRejected
) -> None:
    """A refused event is not silently dropped: keep it, with why, in the dead letters."""
    now = datetime.now(UTC)
    refused = [(r.index, r.errors) for r in rejection.results] or [(0, rejection.errors)]
    try:
        for index, errors in refused:
            db_session.add(
                ingest_service.dead_letter(
                    stage="ingest",
                    raw=items[index] if index < len(items) else None,
                    reason="; ".join(f"{e.field}: {e.reason}" for e in errors),
                    errors=[e.model_dump() for e in errors],
                    now=now,
                )
            )
        await db_session.commit()
    except Exception:  # noqa: BLE001 - the caller still gets its 4xx
        await db_session.rollback()
