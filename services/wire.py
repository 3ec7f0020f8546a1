"""Kafka wire formats, in one place: keys, headers, and the codecs of the records drgwatch
writes to its topics.

- Events topic: key `hospital_id/case_id` (so a case's events share a partition and a
  worker), value the event's contract JSON (schemas/event.v1.json), header
  `drgwatch-case-seq` with the event's number within its case in the ingest ledger.
  The worker also sends itself internal commands through it (`_reprice`, `_release`).
- Changelog of the worker's cases table: key as above, value the case state's JSON;
  END_MARKER_KEY closes each partition's records of a batch (see the worker).
- Dead-letter topic: messages the worker could not process, with where they were and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

CASE_SEQUENCE_HEADER = "drgwatch-case-seq"
# A tombstone written alone after each batch's changelog records, per partition: a
# broker that reports end offsets per record batch (tansu) then reports the true end,
# and table recovery reads every state. Recovery deletes the key; readers skip it.
END_MARKER_KEY = b"\x00drgwatch-end"
REPRICE_COMMAND = "_reprice"
RELEASE_COMMAND = "_release"
COMMAND_TYPES = frozenset({REPRICE_COMMAND, RELEASE_COMMAND})


def case_key(hospital_id: str, case_id: str) -> bytes:
    """The key of a case on every topic: its events, its state, its alerts."""
    return f"{hospital_id}/{case_id}".encode()


def sequence_header(case_seq: int | None) -> list[tuple[str, bytes]] | None:
    """The headers of an event with its per-case ledger number (none without one)."""
    return None if case_seq is None else [(CASE_SEQUENCE_HEADER, str(case_seq).encode())]


def case_sequence(headers: Any) -> int | None:
    """The per-case ledger sequence number in a message's headers, if any.

    Headers come as a mapping (Faust's events) or as (name, value) pairs (the consumer's
    records).
    """
    raw: Any
    if isinstance(headers, dict):
        raw = headers.get(CASE_SEQUENCE_HEADER)
    else:
        raw = None
        pairs: Iterable[tuple[str, Any]] = headers or ()
        for name, value in pairs:
            if name == CASE_SEQUENCE_HEADER:
                raw = value
                break
    if isinstance(raw, bytes) and raw.isdigit():
        return int(raw)
    return None


@dataclass(frozen=True, slots=True)
class Command:
    """An internal command for one case, sent through the events topic like an event."""

    type: str  # REPRICE_COMMAND or RELEASE_COMMAND
    event_id: str
    hospital_id: str
    case_id: str
    occurred_at: datetime
    reference_version: int = 0  # reprice: the price book version it needs


def encode_command(command: Command) -> bytes:
    return orjson.dumps(
        {
            "type": command.type,
            "event_id": command.event_id,
            "hospital_id": command.hospital_id,
            "case_id": command.case_id,
            "occurred_at": command.occurred_at.isoformat(),
            "reference_version": command.reference_version,
        }
    )


def new_command(kind: str, hospital_id: str, case_id: str, event_id: str, **extra: Any) -> Command:
    return Command(kind, event_id, hospital_id, case_id, datetime.now(UTC), **extra)


def decode_command(data: dict[str, Any]) -> Command:
    """A decoded events-topic message whose type is a command; KeyError, ValueError or
    TypeError when it is not a well-formed one."""
    kind = data["type"]
    if kind not in COMMAND_TYPES:
        raise ValueError(f"not a command: {kind!r}")
    return Command(
        type=kind,
        event_id=str(data["event_id"]),
        hospital_id=str(data["hospital_id"]),
        case_id=str(data["case_id"]),
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        reference_version=int(data.get("reference_version", 0)),
    )


def encode_dead_letter(*, partition: int, offset: int, reason: str, payload: bytes) -> bytes:
    """A message the worker could not process, for the dead-letter topic."""
    return orjson.dumps(
        {
            "source": f"{partition}:{offset}",
            "reason": reason,
            "payload": payload.decode("utf-8", "replace"),
        }
    )


def decode_dead_letter(value: bytes) -> tuple[str, str, str]:
    """(source, reason, payload) of a dead-letter record."""
    letter = orjson.loads(value)
    return str(letter.get("source", "")), str(letter.get("reason", "")), str(letter["payload"])
