"""POST /v1/hl7: HL7 v2 messages (one, or a batch) through the ingest core, answered
with their ACKs (services/ingest/hl7 reads, maps and records them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError

from services.access.exceptions import NotPermitted
from services.access.principal import Principal
from services.api.deps import ChargeBookDep, PublisherDep, SessionDep, require
from services.api.events import BodyTooLarge, keep_refused, read_body
from services.ingest.exceptions import LedgerUnavailable, PayloadRejected
from services.ingest.hl7 import intake
from services.ingest.hl7.acks import wrap_batch
from services.ingest.hl7.intake import count_answer
from services.ingest.hl7.profile import Profiles
from services.ingest.publisher import publish_durable
from services.ingest.service import Accepted
from services.metrics import INGEST_UNAVAILABLE
from services.settings import CommonSettings
from services.storage.engine import is_unavailable

router = APIRouter(tags=["ingest"])
HL7_MEDIA_TYPE = "x-application/hl7-v2+er7"
MEDIA_TYPES = frozenset({HL7_MEDIA_TYPE, "text/plain"})

_request_body: dict[str, Any] = {
    "required": True,
    "content": {
        media: {"schema": {"type": "string", "description": "HL7 v2 ER7: MSH... or FHS/BHS..."}}
        for media in sorted(MEDIA_TYPES)
    },
}


@router.post(
    "/v1/hl7",
    response_class=Response,
    openapi_extra={"requestBody": _request_body},
    responses={
        200: {
            "description": "one ACK per message (AA once durable, AE/AR with ERR segments),"
            " in BHS/BTS for a batch",
            "content": {HL7_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        403: {"description": "a message of a hospital outside the caller's scope"},
        413: {"description": "body too large"},
        415: {"description": "not x-application/hl7-v2+er7 or text/plain"},
        422: {"description": "not HL7 v2 at all (no MSH, undecodable, a batch cut short)"},
        503: {"description": "cannot make messages durable now; retry"},
    },
)
async def post_hl7(
    request: Request,
    db_session: SessionDep,
    publisher: PublisherDep,
    caller: Annotated[Principal, Depends(require("events:write"))],
    charge_book: ChargeBookDep,
) -> Response:
    """Take HL7 v2 messages; answer each with its ACK once it is durable (or refused).

    A body that is not HL7 at all, or names a hospital outside the caller's scope, is
    refused as a whole (nothing recorded) and kept as a dead letter, as POST /v1/events
    does; otherwise every message is answered by an ACK, a refused one kept as a dead
    letter with its reason.
    """
    settings: CommonSettings = request.app.state.settings
    profiles: Profiles = request.app.state.hl7_profiles
    raw = b""
    try:
        raw = await read_body(request)
        submission, readings = intake.read_submission(
            raw,
            declared_charset=_charset(request.headers.get("content-type", "")),
            profiles=profiles,
            zone=settings.zone,
            charge_book=charge_book,
        )
        _check_hospitals(caller, readings)
    except BodyTooLarge as refusal:
        await keep_refused(db_session, [], refusal.head, refusal)
        raise
    except (PayloadRejected, NotPermitted) as refusal:
        # one refused for another hospital is kept as its text, unattributed
        kept = [raw.decode("utf-8", "replace")] if isinstance(refusal, NotPermitted) else []
        await keep_refused(db_session, kept, raw, refusal)
        raise
    now = datetime.now(UTC)
    acks: list[str] = []
    accepted: list[Accepted] = []
    try:
        for reading in readings:
            taken = await intake.take(
                db_session, reading, now=now, bounds=request.app.state.settings.time_bounds
            )
            acks.append(taken.ack)
            accepted.extend(taken.accepted)
            count_answer(taken)
    except (LedgerUnavailable, DBAPIError) as error:
        # the messages before this one are durable and acknowledged by nobody: a resend
        # finds them as duplicates and answers AA
        await publish_durable(publisher, accepted)
        if isinstance(error, DBAPIError) and not is_unavailable(error):
            raise
        INGEST_UNAVAILABLE.inc()
        raise LedgerUnavailable() from error
    await publish_durable(publisher, accepted)
    batched = len(readings) > 1 or submission.batch_header or submission.file_header
    body = (
        wrap_batch(
            acks,
            file_header=submission.file_header,
            batch_header=submission.batch_header,
            now=now,
        )
        if batched
        else acks[0]
    )
    return Response(
        body.encode(submission.charset, "replace"),
        media_type=f"{HL7_MEDIA_TYPE}; charset={submission.charset}",
    )


def _charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None


def _check_hospitals(caller: Principal, readings: list[intake.Reading]) -> None:
    """A hospital system posts for its own hospitals only; nothing is recorded otherwise."""
    for index, reading in enumerate(readings):
        hospital_id = reading.mapped.hospital_id
        if hospital_id is not None and not caller.sees_hospital(hospital_id):
            where = f"message {index + 1}" if len(readings) > 1 else "the message"
            raise NotPermitted(
                f"{where} (MSH-4): this credential may not post for hospital {hospital_id!r}"
            )
