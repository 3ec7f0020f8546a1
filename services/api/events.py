"""POST /v1/events: reads the body, checks the caller's hospitals, hands it to ingest."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.exceptions import NotPermitted
from services.access.principal import Principal
from services.api.deps import PublisherDep, require
from services.api.limits import EVENTS_BODY_LIMIT
from services.ingest import service as ingest_service
from services.ingest.exceptions import LedgerUnavailable, PayloadRejected, PayloadTooLarge
from services.ingest.group_commit import GroupCommit
from services.ingest.publisher import publish_durable
from services.ingest.schemas import IngestResult
from services.logs import ids_of
from services.metrics import EVENTS_BACKDATED, INGEST_UNAVAILABLE, count_ingested, count_rejected
from services.storage import dead_letters
from services.validation import FieldError

log = logging.getLogger(__name__)
router = APIRouter(tags=["ingest"])

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


class BodyTooLarge(PayloadTooLarge):
    """A body over EVENTS_BODY_LIMIT; `head` is what was read of it, for the dead letter."""

    def __init__(self, head: bytes) -> None:
        super().__init__(
            f"body larger than {EVENTS_BODY_LIMIT} bytes",
            errors=[FieldError(field="body", reason="too large")],
        )
        self.head = head


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
    publisher: PublisherDep,
    caller: Annotated[Principal, Depends(require("events:write"))],
) -> JSONResponse:
    """Accept one event or {"events": [...]}; 202 once every accepted event is durable.

    Every refusal (too large, not JSON, not events, another hospital's, invalid) is kept
    as a dead letter with its reason before the answer goes out. Postings that arrive
    together share one ledger transaction (services/ingest/group_commit.py).
    """
    raw = b""
    items: list[Any] = []
    try:
        raw = await read_body(request)
        items, is_batch = ingest_service.split_body(ingest_service.decode_body(raw))
        _check_hospitals(caller, items)
        submission = ingest_service.prepare(
            items=items,
            is_batch=is_batch,
            now=datetime.now(UTC),
            bounds=request.app.state.settings.time_bounds,
        )
        group_commit: GroupCommit = request.app.state.group_commit
        result, accepted = await group_commit.record(submission)
    except BodyTooLarge as refusal:
        async with request.app.state.sessions() as db_session:
            await keep_refused(db_session, items, refusal.head, refusal)
        raise
    except (PayloadRejected, NotPermitted) as refusal:
        async with request.app.state.sessions() as db_session:
            await keep_refused(db_session, items, raw, refusal)
        raise
    except LedgerUnavailable:
        INGEST_UNAVAILABLE.inc()
        raise
    for status, count in (
        ("accepted", result.accepted),
        ("duplicate", result.duplicates),
        ("rejected", result.rejected),
    ):
        if count:
            count_ingested("json", status, count)
    backdated = sum(r.status == "accepted" and bool(r.warnings) for r in result.results)
    if backdated:
        EVENTS_BACKDATED.inc(backdated)
    await publish_durable(publisher, accepted)
    return JSONResponse(result.model_dump(mode="json"), status_code=202)


def _check_hospitals(caller: Principal, items: list[Any]) -> None:
    """A hospital system posts for its own hospitals only; nothing is recorded otherwise."""
    for index, item in enumerate(items):
        hospital_id = item.get("hospital_id") if isinstance(item, dict) else None
        if isinstance(hospital_id, str) and not caller.sees_hospital(hospital_id):
            where = f"events[{index}].hospital_id" if len(items) > 1 else "hospital_id"
            raise NotPermitted(f"{where}: this credential may not post events for {hospital_id!r}")


async def read_body(request: Request) -> bytes:
    """The body, within EVENTS_BODY_LIMIT (BodyTooLarge with what was read otherwise)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > EVENTS_BODY_LIMIT:
        raise BodyTooLarge(b"")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > EVENTS_BODY_LIMIT:
            raise BodyTooLarge(b"".join(chunks)[: dead_letters.MAX_PAYLOAD_CHARS])
    return b"".join(chunks)


async def keep_refused(
    db_session: AsyncSession,
    items: list[Any],
    raw: bytes,
    refusal: PayloadRejected | NotPermitted,
) -> None:
    """A refused submission is not silently dropped: keep it, with why, as dead letters.

    One refused for another hospital is kept unattributed (only callers who see every
    hospital list it), so that it shows in no hospital's own list.
    """
    now = datetime.now(UTC)
    if isinstance(refusal, NotPermitted):
        letters = [
            dead_letters.dead_letter(
                stage="ingest",
                raw=items[0] if len(items) == 1 else {"events": items},
                reason=f"forbidden: {refusal.message}",
                errors=[{"field": "hospital_id", "reason": refusal.message}],
                now=now,
                attribute=False,
            )
        ]
    else:
        letters = ingest_service.refusal_letters(
            items=items, raw_body=raw, refusal=refusal, now=now
        )
    reason = refusal_reason(refusal)
    count_rejected("json", reason, max(1, len(letters)))
    # the refusal's message stays in the dead letters: it may quote the posting's content
    log.warning(
        "posting refused (%s): %d events, kept as %d dead letters",
        reason,
        len(items),
        len(letters),
        extra=posting_ids(items),
    )
    try:
        db_session.add_all(letters)
        await db_session.commit()
    except Exception:  # noqa: BLE001 - the caller still gets its refusal
        await db_session.rollback()


def posting_ids(items: list[Any]) -> dict[str, str]:
    """`extra` for the line of a refused posting: a single event's ids; of a batch, the
    ids its events all share (the hospital, a case) and nothing else."""
    if not items:
        return {}
    shared = ids_of(items[0])
    for item in items[1:]:
        ids = ids_of(item)
        shared = {name: value for name, value in shared.items() if ids.get(name) == value}
    if len(items) > 1:
        shared.pop("event_id", None)
    return shared


def refusal_reason(refusal: PayloadRejected | NotPermitted) -> str:
    """The metrics' reason for a refused submission."""
    if isinstance(refusal, NotPermitted):
        return "forbidden"
    return "too_large" if isinstance(refusal, PayloadTooLarge) else "invalid"
