"""Accept events: validate each, make the accepted ones durable in the ledger, publish.

An event is acknowledged (202) only after the ledger transaction commits; publishing
to Kafka follows, and anything not yet published is picked up by the relay, so an
acknowledged event reaches the stream even if the broker was down at that moment.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from pydantic import ValidationError
from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import Insert

from services.casecost.events import Event, event_to_wire, fast_event, parse_event
from services.ingest.exceptions import LedgerUnavailable, PayloadRejected, PayloadTooLarge
from services.ingest.plausibility import TimeBounds, check_times
from services.ingest.schemas import IngestResult, ItemResult
from services.storage import dead_letters
from services.storage.engine import insert_ignoring, is_unavailable, upsert
from services.storage.models import CaseSequence, DeadLetter, LedgerEntry
from services.validation import FieldError, field_errors, summary
from services.wire import case_key

MAX_BATCH = 1000

_LEDGER = cast(Table, LedgerEntry.__table__)
_SEQUENCES = cast(Table, CaseSequence.__table__)
_SET_CASE_SEQ = (
    update(_LEDGER)
    .where(_LEDGER.c.seq == bindparam("ledger_seq"))
    .values(case_seq=bindparam("number"))
)


# built once per dialect: building an upsert makes its `excluded` alias of every column,
# which cost more than running the statement
@functools.cache
def _insert_ledger(dialect: str) -> Insert:
    return insert_ignoring(dialect, _LEDGER).returning(
        _LEDGER.c.seq, _LEDGER.c.hospital_id, _LEDGER.c.event_id
    )


@functools.cache
def _count_cases(dialect: str) -> Insert:
    return upsert(
        dialect, _SEQUENCES, ["hospital_id", "case_id"], [], increment="last_seq"
    ).returning(_SEQUENCES.c.hospital_id, _SEQUENCES.c.case_id, _SEQUENCES.c.last_seq)


# PostgreSQL: the cases' counters moved on and the new rows numbered in one round trip.
# The counters are taken in the order given (WITH ORDINALITY), the caller's key order.
_NUMBER_ROWS_PG = text(
    """
    WITH counters AS (
        INSERT INTO case_sequences (hospital_id, case_id, last_seq)
        SELECT given.hospital_id, given.case_id, given.added
        FROM unnest(
            CAST(:hospitals AS varchar[]), CAST(:cases AS varchar[]), CAST(:added AS bigint[])
        ) WITH ORDINALITY AS given (hospital_id, case_id, added, position)
        ORDER BY given.position
        ON CONFLICT (hospital_id, case_id)
        DO UPDATE SET last_seq = case_sequences.last_seq + excluded.last_seq
        RETURNING hospital_id, case_id, last_seq
    )
    UPDATE ingest_ledger AS ledger
    SET case_seq = counters.last_seq - new_rows.before_last
    FROM unnest(
        CAST(:seqs AS bigint[]),
        CAST(:row_hospitals AS varchar[]),
        CAST(:row_cases AS varchar[]),
        CAST(:before_last AS bigint[])
    ) AS new_rows (seq, hospital_id, case_id, before_last)
    JOIN counters
        ON counters.hospital_id = new_rows.hospital_id AND counters.case_id = new_rows.case_id
    WHERE ledger.seq = new_rows.seq
    RETURNING ledger.seq, ledger.case_seq
    """
)


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event made durable, ready to publish."""

    seq: int
    key: bytes
    value: bytes
    case_seq: int | None = None
    # the ledger's received_at: the record's timestamp, from which the worker counts the
    # delay to an alert (None: the producer's clock when it sends)
    received_at: datetime | None = None


def decode_body(raw: bytes) -> Any:
    """A submission's bytes as JSON, or PayloadRejected naming why not."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise PayloadRejected(
            "the body is not valid JSON",
            errors=[FieldError(field="body", reason=f"invalid JSON: {error}")],
        ) from None


def split_body(body: Any) -> tuple[list[Any], bool]:
    """Return (items, is_batch) from a decoded body, or raise PayloadRejected."""
    if isinstance(body, dict) and "events" in body:
        extra = sorted(set(body) - {"events"})
        if extra:
            raise PayloadRejected(
                "a batch has only an 'events' list",
                errors=[FieldError(field=name, reason="unexpected field") for name in extra],
            )
        items = body["events"]
        if not isinstance(items, list):
            raise PayloadRejected(
                "events must be a list",
                errors=[FieldError(field="events", reason="must be a list")],
            )
        if not items:
            raise PayloadRejected(
                "empty batch", errors=[FieldError(field="events", reason="must not be empty")]
            )
        if len(items) > MAX_BATCH:
            raise PayloadTooLarge(
                f"a batch holds at most {MAX_BATCH} events",
                errors=[FieldError(field="events", reason=f"more than {MAX_BATCH} events")],
            )
        return items, True
    if isinstance(body, dict):
        return [body], False
    raise PayloadRejected(
        'the body must be one event object or {"events": [...]}',
        errors=[FieldError(field="body", reason="must be a JSON object")],
    )


def validate_items(
    items: list[Any], *, now: datetime, bounds: TimeBounds
) -> tuple[list[tuple[int, Event]], list[ItemResult], dict[int, list[FieldError]]]:
    """Validate each item against the contract and its times against `now`; return the
    valid events with their index, the rejections, and the warnings by index."""
    valid: list[tuple[int, Event]] = []
    rejected: list[ItemResult] = []
    warnings: dict[int, list[FieldError]] = {}
    for index, raw in enumerate(items):
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        try:
            event = _fast(raw) or parse_event(raw)
        except ValidationError as error:
            errors = field_errors(error)
        else:
            errors, warned = check_times(event, now=now, bounds=bounds)
            if not errors:
                valid.append((index, event))
                if warned:
                    warnings[index] = warned
                continue
        rejected.append(
            ItemResult(
                index=index,
                event_id=event_id if isinstance(event_id, str) else None,
                status="rejected",
                errors=errors,
            )
        )
    return valid, rejected, warnings


def _fast(raw: Any) -> Event | None:
    """The event checked in one pass, as the worker reads it (services/casecost/events.py
    fast_event: what it accepts, parse_event accepts as the same event); None leaves it to
    parse_event, which names what is wrong."""
    if not isinstance(raw, dict):
        return None
    try:
        return fast_event(orjson.dumps(raw))
    except orjson.JSONEncodeError:
        return None


def payload_hash(wire: bytes) -> str:
    return hashlib.sha256(wire).hexdigest()


@dataclass(slots=True)
class Submission:
    """A submission validated and ready to record: its items' results so far (the
    refused and the repeated), and each distinct event (hospital, event_id) in order."""

    items: list[Any]
    is_batch: bool
    now: datetime
    results: dict[int, ItemResult]
    warnings: dict[int, list[FieldError]]
    # each distinct event's first index, its wire bytes and its ledger row, in order
    firsts: dict[tuple[str, str], int]
    wires: dict[tuple[str, str], bytes]
    rows: dict[tuple[str, str], dict[str, Any]]

    @property
    def events(self) -> int:
        return len(self.rows)


def prepare(*, items: list[Any], is_batch: bool, now: datetime, bounds: TimeBounds) -> Submission:
    """Validate a submission received at `now` and lay out its ledger rows; raise
    PayloadRejected when nothing in it can be recorded (a lone event refused, or every
    event of a batch)."""
    valid, rejected, warnings = validate_items(items, now=now, bounds=bounds)
    if not is_batch and rejected:
        raise PayloadRejected("the event is invalid", errors=rejected[0].errors)
    if not valid:
        raise PayloadRejected("no event in the batch is valid", results=rejected)
    submission = Submission(
        items=items,
        is_batch=is_batch,
        now=now,
        results={result.index: result for result in rejected},
        warnings=warnings,
        firsts={},
        wires={},
        rows={},
    )
    for index, event in valid:
        identity = (event.hospital_id, event.event_id)
        wire = orjson.dumps(event_to_wire(event))
        if identity in submission.firsts:
            same = submission.wires[identity] == wire
            submission.results[index] = _repeat(index, event.event_id, same)
            continue
        submission.firsts[identity] = index
        submission.wires[identity] = wire
        submission.rows[identity] = {
            "hospital_id": event.hospital_id,
            "event_id": event.event_id,
            "case_id": event.case_id,
            "event_type": event.type,
            "payload": wire.decode(),
            "payload_hash": payload_hash(wire),
            "received_at": now,
            "published": False,
        }
    return submission


Recorded = tuple[IngestResult, list[Accepted]]


async def record(
    *,
    db_session: AsyncSession,
    items: list[Any],
    is_batch: bool,
    now: datetime,
    bounds: TimeBounds,
    keep_rejections: bool = True,
) -> Recorded:
    """Validate and durably record a submission received at `now`; the caller commits,
    then publishes. Each refused event is kept as a dead letter unless `keep_rejections`
    is False (the caller keeps them: see record_each)."""
    submission = prepare(items=items, is_batch=is_batch, now=now, bounds=bounds)
    [outcome] = await record_group(
        db_session=db_session, submissions=[submission], keep_rejections=keep_rejections
    )
    if isinstance(outcome, PayloadRejected):
        raise outcome
    return outcome


async def record_group(
    *,
    db_session: AsyncSession,
    submissions: list[Submission],
    keep_rejections: bool = True,
) -> list[Recorded | PayloadRejected]:
    """Durably record prepared submissions in the session's one transaction (the caller
    commits, then publishes); return each one's outcome in order.

    The submissions are taken as if one after the other: an event repeated in a later
    one is its duplicate (or, with other content, refused), and each case's new events
    are numbered in that order. A submission of which nothing can be recorded (every
    event refused, e.g. an event_id reused for other content) has PayloadRejected for
    its outcome and no dead letter here: its caller keeps those as for any refusal.
    """
    # the first submission to carry each event records it
    owner: dict[tuple[str, str], int] = {}
    rows: list[dict[str, Any]] = []
    for number, submission in enumerate(submissions):
        for identity, row in submission.rows.items():
            if identity not in owner:
                owner[identity] = number
                rows.append(row)
    try:
        connection = await db_session.connection()
        inserted = await _insert_rows(connection, rows)
        new_in_order = [identity for identity in owner if identity in inserted]
        case_seq_of = await _number_per_case(
            connection,
            [
                (inserted[identity], _case_of(submissions[owner[identity]], identity))
                for identity in new_in_order
            ],
        )
        existing = [identity for identity in owner if identity not in inserted]
        earlier_hashes = await _hashes(db_session, existing) if existing else {}
        outcomes: list[Recorded | PayloadRejected] = []
        letters: list[DeadLetter] = []
        for number, submission in enumerate(submissions):
            results = dict(submission.results)
            accepted: list[Accepted] = []
            for identity, index in submission.firsts.items():
                event_id = identity[1]
                wire = submission.wires[identity]
                first = owner[identity]
                if first == number and identity in inserted:
                    results[index] = ItemResult(index=index, event_id=event_id, status="accepted")
                    seq = inserted[identity]
                    accepted.append(
                        Accepted(
                            seq=seq,
                            key=case_key(*_case_of(submission, identity)),
                            value=wire,
                            case_seq=case_seq_of[seq],
                            received_at=submission.now,
                        )
                    )
                elif first == number:
                    same = earlier_hashes.get(identity) == payload_hash(wire)
                    results[index] = _repeat(index, event_id, same)
                else:
                    same = submissions[first].wires[identity] == wire
                    results[index] = _repeat(index, event_id, same)
            outcome = _outcome(submission, results, accepted)
            outcomes.append(outcome)
            if keep_rejections and not isinstance(outcome, PayloadRejected):
                letters.extend(
                    rejection_letter(submission.items[r.index], r, submission.now)
                    for r in outcome[0].results
                    if r.status == "rejected"
                )
        if letters:
            db_session.add_all(letters)
            await db_session.flush()
    except DBAPIError as error:
        if is_unavailable(error):
            raise LedgerUnavailable() from error
        raise
    return outcomes


def _case_of(submission: Submission, identity: tuple[str, str]) -> tuple[str, str]:
    row = submission.rows[identity]
    return row["hospital_id"], row["case_id"]


def _outcome(
    submission: Submission, results: dict[int, ItemResult], accepted: list[Accepted]
) -> Recorded | PayloadRejected:
    for index, warned in submission.warnings.items():
        if results[index].status != "rejected":
            results[index].warnings = warned
    ordered = [results[index] for index in sorted(results)]
    if not accepted and all(r.status == "rejected" for r in ordered):
        # e.g. an event_id reused for different content: nothing was recorded
        return PayloadRejected(
            "no event was accepted",
            errors=ordered[0].errors if not submission.is_batch else [],
            results=ordered if submission.is_batch else [],
        )
    return (
        IngestResult(
            accepted=sum(r.status == "accepted" for r in ordered),
            duplicates=sum(r.status == "duplicate" for r in ordered),
            rejected=sum(r.status == "rejected" for r in ordered),
            results=ordered,
        ),
        accepted,
    )


async def _insert_rows(
    connection: AsyncConnection, rows: list[dict[str, Any]]
) -> dict[tuple[str, str], int]:
    """Insert the ledger rows that are new; return their seqs by (hospital, event_id)."""
    if not rows:
        return {}
    statement = _insert_ledger(connection.dialect.name)
    return {
        (row.hospital_id, row.event_id): row.seq
        for row in (await connection.execute(statement, rows)).all()
    }


async def _number_per_case(
    connection: AsyncConnection, new_rows: list[tuple[int, tuple[str, str]]]
) -> dict[int, int]:
    """Give each new ledger row (seq, case), in submission order, the next sequence number
    of its case; return the numbers by ledger seq.

    The cases' counter rows are taken in key order, so that concurrent submissions cannot
    deadlock; each stays locked until the commit, so a case's numbers follow commit order
    and a rolled-back submission leaves no gap.
    """
    if not new_rows:
        return {}
    counts: dict[tuple[str, str], int] = {}
    for _, case in new_rows:
        counts[case] = counts.get(case, 0) + 1
    # the k-th of a case's c new rows is numbered (the counter after the update) - (c - k)
    left = dict(counts)
    before_last = []
    for _, case in new_rows:
        left[case] -= 1
        before_last.append(left[case])
    ordered = sorted(counts.items())
    if connection.dialect.name == "postgresql":
        numbered = await connection.execute(
            _NUMBER_ROWS_PG,
            {
                "hospitals": [hospital_id for (hospital_id, _), _ in ordered],
                "cases": [case_id for (_, case_id), _ in ordered],
                "added": [count for _, count in ordered],
                "seqs": [seq for seq, _ in new_rows],
                "row_hospitals": [hospital_id for _, (hospital_id, _) in new_rows],
                "row_cases": [case_id for _, (_, case_id) in new_rows],
                "before_last": before_last,
            },
        )
        return {row.seq: row.case_seq for row in numbered}
    statement = _count_cases(connection.dialect.name)
    last = {
        (row.hospital_id, row.case_id): row.last_seq
        for row in await connection.execute(
            statement,
            [
                {"hospital_id": hospital_id, "case_id": case_id, "last_seq": count}
                for (hospital_id, case_id), count in ordered
            ],
        )
    }
    numbers = {
        seq: last[case] - back for (seq, case), back in zip(new_rows, before_last, strict=True)
    }
    await connection.execute(
        _SET_CASE_SEQ,
        [{"ledger_seq": seq, "number": number} for seq, number in numbers.items()],
    )
    return numbers


def _repeat(index: int, event_id: str, same_content: bool) -> ItemResult:
    if same_content:
        return ItemResult(index=index, event_id=event_id, status="duplicate")
    return ItemResult(
        index=index,
        event_id=event_id,
        status="rejected",
        errors=[
            FieldError(
                field="event_id",
                reason="already used for a different event of this hospital",
            )
        ],
    )


async def _hashes(
    db_session: AsyncSession, identities: list[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for hospital_id in {hospital for hospital, _ in identities}:
        event_ids = [event_id for hospital, event_id in identities if hospital == hospital_id]
        rows = await db_session.execute(
            select(LedgerEntry.event_id, LedgerEntry.payload_hash).where(
                LedgerEntry.hospital_id == hospital_id, LedgerEntry.event_id.in_(event_ids)
            )
        )
        found.update({(hospital_id, row.event_id): row.payload_hash for row in rows})
    return found


@dataclass(frozen=True, slots=True)
class Recording:
    """What became of a batch of events: each one's result, the events to publish, and
    the dead letter of each refused one by its index (not yet added: see record_each)."""

    results: list[ItemResult]
    accepted: list[Accepted]
    letters: dict[int, DeadLetter]


async def record_each(
    *,
    db_session: AsyncSession,
    items: list[Any],
    now: datetime,
    bounds: TimeBounds,
) -> Recording:
    """Record a batch's events, each on its own, as a POST /v1/events batch is taken (the
    caller commits, then publishes); when none of them can be recorded the transaction
    is rolled back. The refused events' dead letters are returned for the caller to
    keep, or to drop when it refuses more than the events (a whole message)."""
    try:
        result, accepted = await record(
            db_session=db_session,
            items=items,
            is_batch=True,
            now=now,
            bounds=bounds,
            keep_rejections=False,
        )
        results = result.results
    except PayloadRejected as refusal:
        # nothing of the batch was recorded; every event says why
        await db_session.rollback()
        results, accepted = refusal.results, []
    letters = {
        result.index: rejection_letter(items[result.index], result, now)
        for result in results
        if result.status == "rejected"
    }
    return Recording(results=results, accepted=accepted, letters=letters)


def rejection_letter(raw: Any, result: ItemResult, now: datetime) -> DeadLetter:
    """The dead letter of a refused event: what came, and why, listable at /v1/dead-letters."""
    return dead_letters.dead_letter(
        stage="ingest",
        raw=raw,
        reason=summary(result.errors),
        errors=[error.model_dump() for error in result.errors],
        now=now,
    )


def refusal_letters(
    *,
    items: list[Any],
    raw_body: bytes,
    refusal: PayloadRejected,
    now: datetime,
) -> list[DeadLetter]:
    """Dead letters for a submission refused as a whole: one per refused event where the
    refusal names them, else one holding the body (what was read of it)."""
    if refusal.results:
        return [
            rejection_letter(
                items[result.index] if result.index < len(items) else None, result, now
            )
            for result in refusal.results
            if result.status == "rejected"
        ]
    raw: Any = items[0] if len(items) == 1 else raw_body.decode("utf-8", "replace")
    errors = refusal.errors or [FieldError(field="body", reason=refusal.message)]
    return [
        dead_letters.dead_letter(
            stage="ingest",
            raw=raw,
            reason=summary(errors),
            errors=[error.model_dump() for error in errors],
            now=now,
        )
    ]
