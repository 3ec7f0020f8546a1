"""HL7 v2 messages through the ingest core: one message, one unit of work, one ACK.

`read_submission` reads a body (one message or a batch) and maps each message (no I/O),
so that a caller can check every hospital it names before anything is recorded. `take`
then records one message: its events go through the same ingest core as POST
/v1/events (validated against contract v1, written to the ledger, numbered in the case's
order), and are committed before its AA is written. A message maps and records whole or
not at all: a refused one (AE/AR) leaves nothing in the ledger and is kept as a dead
letter (its text, the reason, the segment and field). A message sent again is
acknowledged AA: its events are duplicates of the ledgered ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.casecost.chargemaster import ChargeBook
from services.ingest import service as ingest_service
from services.ingest.exceptions import PayloadRejected
from services.ingest.hl7.acks import build_ack
from services.ingest.hl7.er7 import Message, Submission, split_submission
from services.ingest.hl7.exceptions import Hl7Unreadable
from services.ingest.hl7.mapping import AckCode, Mapped, MappedEvent, Problem, map_message
from services.ingest.hl7.profile import Profiles
from services.ingest.plausibility import TimeBounds
from services.ingest.schemas import ItemResult
from services.ingest.service import Accepted
from services.metrics import EVENTS_INGESTED, HL7_MESSAGES, count_rejected
from services.storage import dead_letters
from services.storage.models import DeadLetter
from services.validation import FieldError

MAX_MESSAGES = 1000


@dataclass(slots=True)
class Reading:
    """One message of a submission: its text, what it parsed to, what it maps to."""

    text: str
    message: Message | None
    mapped: Mapped


@dataclass(slots=True)
class Taken:
    """What became of one message: its ACK, and the events to publish."""

    ack: str
    code: AckCode
    accepted: list[Accepted] = field(default_factory=list)
    duplicates: int = 0


def read_submission(
    raw: bytes,
    *,
    declared_charset: str | None,
    profiles: Profiles,
    zone: ZoneInfo,
    charge_book: ChargeBook,
) -> tuple[Submission, list[Reading]]:
    """The messages of a body, each mapped (an FT1 the profile does not categorise takes
    its item's category in `charge_book`); Hl7Unreadable if the body is not HL7 at all."""
    submission = split_submission(raw, declared_charset)
    if len(submission.messages) > MAX_MESSAGES:
        raise Hl7Unreadable(f"a batch holds at most {MAX_MESSAGES} messages")
    readings = []
    for text in submission.messages:
        try:
            message = Message.read(text, submission.charset)
        except Hl7Unreadable as error:
            mapped = Mapped(refusal="AR", problems=[Problem(error.message, None, 100)])
            readings.append(Reading(text=text, message=None, mapped=mapped))
            continue
        readings.append(
            Reading(
                text=text,
                message=message,
                mapped=map_message(message, profiles, zone, charge_book),
            )
        )
    return submission, readings


async def take(
    db_session: AsyncSession, reading: Reading, *, now: datetime, bounds: TimeBounds
) -> Taken:
    """Record one message and commit (see the module docstring); raises LedgerUnavailable
    when the database cannot make it durable (nothing is acknowledged then)."""
    mapped = reading.mapped
    if mapped.refusal is not None:
        return await _refuse(db_session, reading, mapped.refusal, mapped.problems, now)
    if not mapped.events:
        return Taken(ack=_ack(reading, "AA", [], mapped.notes, now), code="AA")
    items = [event.event for event in mapped.events]
    try:
        result, accepted = await ingest_service.record(
            db_session=db_session, items=items, is_batch=True, now=now, bounds=bounds
        )
    except PayloadRejected as refusal:
        await db_session.rollback()
        return await _refuse(
            db_session, reading, "AE", contract_problems(mapped.events, refusal.results), now
        )
    refused = [item for item in result.results if item.status == "rejected"]
    if refused:
        await db_session.rollback()
        return await _refuse(
            db_session, reading, "AE", contract_problems(mapped.events, refused), now
        )
    await db_session.commit()
    notes = list(mapped.notes)
    for item in result.results:
        for warning in item.warnings:
            notes.append(_problem(mapped.events[item.index], warning, code=0))
    duplicates = sum(item.status == "duplicate" for item in result.results)
    if duplicates == len(result.results):
        notes.append(
            Problem("already received: every event of this message was recorded before", None, 0)
        )
    return Taken(
        ack=_ack(reading, "AA", [], notes, now),
        code="AA",
        accepted=accepted,
        duplicates=duplicates,
    )


def count_answer(taken: Taken) -> None:
    """Count a message's answer and its events in the metrics."""
    HL7_MESSAGES.labels(code=taken.code).inc()
    if taken.code != "AA":
        count_rejected("hl7", f"ack_{taken.code.lower()}")
        return
    if taken.accepted:
        EVENTS_INGESTED.labels(source="hl7", status="accepted").inc(len(taken.accepted))
    if taken.duplicates:
        EVENTS_INGESTED.labels(source="hl7", status="duplicate").inc(taken.duplicates)


def _ack(
    reading: Reading, code: AckCode, problems: list[Problem], notes: list[Problem], now: datetime
) -> str:
    return build_ack(reading.message, code, problems=problems, notes=notes, now=now)


def _problem(source: MappedEvent, error: FieldError, *, code: int = 102) -> Problem:
    name = error.field.split(".", 1)[0]
    return Problem(f"{error.field}: {error.reason}", source.sources.get(name), code)


def contract_problems(events: list[MappedEvent], results: list[ItemResult]) -> list[Problem]:
    """Why a message's events were refused, each at the segment and field it came from."""
    found = [
        _problem(events[result.index], error)
        for result in results
        if result.status == "rejected"
        for error in result.errors
    ]
    return found or [Problem("the message's events were refused", None, 207)]


async def _refuse(
    db_session: AsyncSession,
    reading: Reading,
    code: AckCode,
    problems: list[Problem],
    now: datetime,
) -> Taken:
    """Keep the refused message as a dead letter (with the reason), then answer AE/AR."""
    db_session.add(refusal_letter(reading, code, problems, now))
    await db_session.commit()
    return Taken(ack=_ack(reading, code, problems, [], now), code=code)


def refusal_letter(
    reading: Reading,
    code: AckCode,
    problems: list[Problem],
    now: datetime,
    *,
    attribute: bool = True,
) -> DeadLetter:
    """A refused message as a dead letter: its text, the reason, each segment and field;
    under its hospital, case and control id (none with `attribute=False`)."""
    mapped = reading.mapped
    errors: list[dict[str, Any]] = [
        {
            "field": str(problem.location) if problem.location else "message",
            "reason": problem.reason,
        }
        for problem in problems
    ]
    letter = dead_letters.dead_letter(
        stage="ingest",
        raw=reading.text,
        reason=f"HL7 {code}: " + "; ".join(str(problem) for problem in problems),
        errors=errors,
        now=now,
    )
    if not attribute:
        return letter
    letter.hospital_id = mapped.hospital_id[:64] if mapped.hospital_id else None
    letter.case_id = mapped.case_id[:64] if mapped.case_id else None
    if reading.message is not None and reading.message.control_id:
        letter.event_id = dead_letters.storable(reading.message.control_id)[:64]
    return letter
