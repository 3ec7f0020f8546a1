"""What an intake record carries and what the intake answers for it; no I/O.

A record's value is one contract v1 event, or `{"events": [...]}` like a POST /v1/events
body. Its key is not trusted (events are published keyed by their own hospital and
case); it is echoed on the record's result so that a producer can find its answers.

A record's status is the worst of its events': `refused` when the record cannot be
read or any of its events is refused (`events` then says which, with each reason),
`duplicate` when every event was recorded before, `accepted` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from services.ingest import service as ingest_service
from services.ingest.exceptions import PayloadRejected
from services.ingest.schemas import ItemResult
from services.validation import FieldError, summary

RecordStatus = Literal["accepted", "duplicate", "refused"]
ALL_HOSPITALS = "*"
# larger than any POST /v1/events body would be refused for the same reason
MAX_RECORD_BYTES = 4 * 1024 * 1024
SOURCE_HEADER = "drgwatch-source"
MAX_SOURCE_CHARS = 64


@dataclass(frozen=True, slots=True)
class IntakeRecord:
    """One record read from the intake topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    source: str | None = None


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
    """The answer for one intake record, sent to the results topic."""

    partition: int
    offset: int
    key: str | None
    source: str | None
    status: RecordStatus
    reason: str | None
    errors: list[FieldError] = []
    events: list[EventOutcome] = []


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
            partition=record.partition,
            offset=record.offset,
            key=key,
            source=record.source,
            status="refused",
            reason=summary(refusal),
            errors=refusal,
        )
    refused = [
        (index, outcome) for index, outcome in enumerate(outcomes) if outcome.status == "rejected"
    ]
    status: RecordStatus
    if refused:
        status = "refused"
    elif all(outcome.status == "duplicate" for outcome in outcomes):
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
