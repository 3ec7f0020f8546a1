"""What an intake record carries and what the intake answers for it; no I/O.

A record's value is one contract v1 event, `{"events": [...]}` like a POST /v1/events
body, or HL7 v2 (one message or a batch, as POST /v1/hl7 takes it). Its key is not
trusted (events are published keyed by their own hospital and case); it is echoed on the
record's result so that a producer can find its answers.

A record is read into units, each recorded in one transaction: a JSON record is one
unit whose events are taken each on its own (as the API takes a batch), an HL7 message
is one unit recorded whole or refused whole. `chunks` groups units into transactions of
at most so many events, never splitting one.

A record's status is the worst of its events': `refused` when the record cannot be
read, or any of its events or messages is refused (`errors` says which, with each
reason: an HL7 message names the segment and field), `duplicate` when every event was
recorded before, `accepted` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from services.casecost.chargemaster import ChargeBook
from services.ingest import service as ingest_service
from services.ingest.exceptions import PayloadRejected
from services.ingest.hl7.er7 import Location
from services.ingest.hl7.intake import Reading, read_submission
from services.ingest.hl7.mapping import Problem
from services.ingest.hl7.profile import Profiles
from services.ingest.schemas import ItemResult
from services.storage.dead_letters import MAX_PAYLOAD_CHARS
from services.validation import FieldError, summary

RecordStatus = Literal["accepted", "duplicate", "refused"]
ALL_HOSPITALS = "*"
# larger than any POST /v1/events body would be refused for the same reason
MAX_RECORD_BYTES = 4 * 1024 * 1024
SOURCE_HEADER = "drgwatch-source"
MAX_SOURCE_CHARS = 64
HL7_STARTS = (b"MSH", b"FHS", b"BHS")
NOT_RECORDED = FieldError(field="event", reason="not recorded")


@dataclass(frozen=True, slots=True)
class IntakeRecord:
    """One record read from the intake topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    source: str | None = None

    @property
    def record_id(self) -> str:
        """`topic/partition/offset`: the record's identity, whoever reads it and how often."""
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class HospitalScope:
    """The hospitals this intake takes events for; `hospitals` None: every hospital."""

    hospitals: frozenset[str] | None

    @classmethod
    def parse(cls, text: str) -> HospitalScope:
        """`*` for every hospital, else comma-separated hospital ids (ValueError if none)."""
        names = [name.strip() for name in text.split(",") if name.strip()]
        if names == [ALL_HOSPITALS]:
            return cls(hospitals=None)
        if not names or ALL_HOSPITALS in names:
            raise ValueError("give hospital ids separated by commas, or * for every hospital")
        return cls(hospitals=frozenset(names))

    def allows(self, hospital_id: str) -> bool:
        return self.hospitals is None or hospital_id in self.hospitals


class EventOutcome(BaseModel):
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[FieldError] = []


class IntakeResult(BaseModel):
    """The answer for one intake record, sent to the results topic; a record read again
    is answered again under the same `record_id`."""

    record_id: str
    partition: int
    offset: int
    key: str | None
    source: str | None
    status: RecordStatus
    reason: str | None
    errors: list[FieldError] = []
    events: list[EventOutcome] = []


@dataclass(slots=True)
class Unit:
    """Events recorded in one transaction: a JSON record's, each taken on its own, or one
    HL7 message's (`message`), all or none. `key` identifies its dead letters: the
    record's id, `#n` added for its n-th event or message.

    What reading found is kept apart from what taking it gives (`outcomes`, `problems`),
    so that a transaction that failed can be taken again from the start."""

    key: str
    events: list[Any] = field(default_factory=list)
    message: Reading | None = None
    # refused as read: events outside the scope, by index; why a message is refused
    # (`attribute`: its dead letter names its hospital); a record that cannot be read
    outside: dict[int, EventOutcome] = field(default_factory=dict)
    read_problems: list[Problem] = field(default_factory=list)
    attribute: bool = True
    unreadable: PayloadRejected | None = None
    raw: bytes = b""
    outcomes: list[EventOutcome | None] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to what reading found: nothing recorded yet."""
        self.outcomes = [self.outside.get(index) for index in range(len(self.events))]
        self.problems = list(self.read_problems)
        if self.problems:
            refuse_message(self, [])

    def pending(self) -> list[int]:
        """The events still to record (none of a refused message)."""
        if self.problems or self.unreadable is not None:
            return []
        return [index for index, outcome in enumerate(self.outcomes) if outcome is None]


@dataclass(slots=True)
class ReadRecord:
    """A record and the units it was read into."""

    record: IntakeRecord
    units: list[Unit]


def read(
    records: Sequence[IntakeRecord],
    *,
    scope: HospitalScope,
    profiles: Profiles,
    zone: ZoneInfo,
    charge_book: ChargeBook,
) -> list[ReadRecord]:
    """Every record read into its units; events outside the scope are refused here.
    `charge_book`: the chargemasters, for the categories of HL7 charges the profile lacks."""
    return [
        ReadRecord(record=record, units=_units(record, scope, profiles, zone, charge_book))
        for record in records
    ]


def _units(
    record: IntakeRecord,
    scope: HospitalScope,
    profiles: Profiles,
    zone: ZoneInfo,
    charge_book: ChargeBook,
) -> list[Unit]:
    try:
        if is_hl7(record.value):
            return _hl7_units(record, scope, profiles, zone, charge_book)
        events = read_record(record.value)
    except PayloadRejected as refusal:
        raw = (record.value or b"")[:MAX_PAYLOAD_CHARS]
        return [Unit(key=record.record_id, unreadable=refusal, raw=raw)]
    outside: dict[int, EventOutcome] = {}
    for index, event in enumerate(events):
        forbidden = scope_refusal(event, scope)
        if forbidden is not None:
            outside[index] = refused_outcome(event, [forbidden])
    return [Unit(key=record.record_id, events=events, outside=outside)]


def is_hl7(value: bytes | None) -> bool:
    """Whether a record's value is HL7 v2 ER7 (a message or a batch) rather than JSON."""
    return bool(value) and (value or b"").lstrip(b"\xef\xbb\xbf \t\r\n")[:3] in HL7_STARTS


def _hl7_units(
    record: IntakeRecord,
    scope: HospitalScope,
    profiles: Profiles,
    zone: ZoneInfo,
    charge_book: ChargeBook,
) -> list[Unit]:
    if len(record.value or b"") > MAX_RECORD_BYTES:
        read_record(record.value)  # refused for its size, as JSON is
    _, readings = read_submission(
        record.value or b"",
        declared_charset=None,
        profiles=profiles,
        zone=zone,
        charge_book=charge_book,
    )
    units = []
    for number, reading in enumerate(readings):
        mapped = reading.mapped
        events = [mapped_event.event for mapped_event in mapped.events]
        problems = list(mapped.problems) if mapped.refusal is not None else []
        inside = mapped.hospital_id is None or scope.allows(mapped.hospital_id)
        if not inside:
            problems = [
                Problem(
                    f"this intake does not take events for {mapped.hospital_id!r}",
                    Location("MSH", 4),
                )
            ]
        units.append(
            Unit(
                key=f"{record.record_id}#{number}",
                events=events,
                message=reading,
                read_problems=problems,
                attribute=inside,
            )
        )
    return units


def refuse_message(unit: Unit, results: Sequence[ItemResult]) -> None:
    """Every event of a refused message is refused with it: those that broke the
    contract with their own errors, the others as not recorded."""
    errors = {result.index: result.errors for result in results if result.status == "rejected"}
    for index, event in enumerate(unit.events):
        unit.outcomes[index] = refused_outcome(
            event,
            errors.get(index)
            or [FieldError(field="message", reason="not recorded: its message is refused")],
        )


def chunks(units: Sequence[Unit], max_events: int) -> list[list[Unit]]:
    """The units in order, grouped so that each group records at most `max_events`
    events; a larger unit is a group of its own."""
    groups: list[list[Unit]] = []
    current: list[Unit] = []
    size = 0
    for unit in units:
        events = len(unit.pending())
        if current and size + events > max_events:
            groups.append(current)
            current, size = [], 0
        current.append(unit)
        size += events
    if current:
        groups.append(current)
    return groups


def answer(read_record: ReadRecord) -> IntakeResult:
    """A record's result once each of its units is taken."""
    record, units = read_record.record, read_record.units
    if units and units[0].unreadable is not None:
        refusal = units[0].unreadable
        return record_result(
            record,
            outcomes=[],
            refusal=refusal.errors or [FieldError(field="value", reason=refusal.message)],
        )
    outcomes = [
        outcome
        if outcome is not None
        else EventOutcome(event_id=None, status="rejected", errors=[NOT_RECORDED])
        for unit in units
        for outcome in unit.outcomes
    ]
    if not any(unit.message is not None for unit in units):
        return record_result(record, outcomes=outcomes)
    several = len(units) > 1
    problems = [
        FieldError(
            field=(f"messages[{number}]." if several else "")
            + (str(problem.location) if problem.location else "message"),
            reason=problem.reason,
        )
        for number, unit in enumerate(units)
        for problem in unit.problems
    ]
    return record_result(record, outcomes=outcomes, refusal=problems or None)


def source_of(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    """The optional `drgwatch-source` header (the producing system's name), cut short."""
    for name, value in headers or ():
        if name == SOURCE_HEADER and value:
            return value.decode("utf-8", "replace")[:MAX_SOURCE_CHARS]
    return None


def read_record(value: bytes | None) -> list[Any]:
    """The events a record's value holds; PayloadRejected naming why it cannot be read."""
    if not value:
        raise PayloadRejected(
            "the record has no value",
            errors=[FieldError(field="value", reason="empty record (or a tombstone)")],
        )
    if len(value) > MAX_RECORD_BYTES:
        raise PayloadRejected(
            "the record is too large",
            errors=[FieldError(field="value", reason=f"larger than {MAX_RECORD_BYTES} bytes")],
        )
    items, _ = ingest_service.split_body(ingest_service.decode_body(value))
    return items


def scope_refusal(item: Any, scope: HospitalScope) -> FieldError | None:
    """Why an event may not come through this intake, or None."""
    hospital_id = item.get("hospital_id") if isinstance(item, dict) else None
    if isinstance(hospital_id, str) and not scope.allows(hospital_id):
        return FieldError(
            field="hospital_id",
            reason=f"this intake does not take events for {hospital_id!r}",
        )
    return None


def record_result(
    record: IntakeRecord,
    *,
    outcomes: list[EventOutcome],
    refusal: list[FieldError] | None = None,
) -> IntakeResult:
    """A record's result from its events' outcomes, or from why it could not be read."""
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    if refusal is not None:
        return IntakeResult(
            record_id=record.record_id,
            partition=record.partition,
            offset=record.offset,
            key=key,
            source=record.source,
            status="refused",
            reason=summary(refusal),
            errors=refusal,
            events=outcomes,
        )
    refused = [
        (index, outcome) for index, outcome in enumerate(outcomes) if outcome.status == "rejected"
    ]
    status: RecordStatus
    if refused:
        status = "refused"
    elif outcomes and all(outcome.status == "duplicate" for outcome in outcomes):
        status = "duplicate"
    else:
        status = "accepted"
    errors = [
        FieldError(
            field=f"events[{index}].{error.field}" if len(outcomes) > 1 else error.field,
            reason=error.reason,
        )
        for index, outcome in refused
        for error in outcome.errors
    ]
    return IntakeResult(
        record_id=record.record_id,
        partition=record.partition,
        offset=record.offset,
        key=key,
        source=record.source,
        status=status,
        reason=summary(errors) if errors else None,
        errors=errors,
        events=outcomes,
    )


def outcome_of(result: ItemResult) -> EventOutcome:
    return EventOutcome(event_id=result.event_id, status=result.status, errors=result.errors)


def refused_outcome(item: Any, errors: list[FieldError]) -> EventOutcome:
    event_id = item.get("event_id") if isinstance(item, dict) else None
    return EventOutcome(
        event_id=event_id if isinstance(event_id, str) else None,
        status="rejected",
        errors=errors,
    )
