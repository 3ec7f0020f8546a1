"""Kafka wire formats, in one place: keys, headers, and the codecs of the records drgwatch
writes to its topics.

- Events topic (internal): key `hospital_id/case_id` (so a case's events share a partition
  and a worker), value the event's contract JSON (schemas/event.v1.json), header
  `drgwatch-case-seq` with the event's number within its case in the ingest ledger, and
  header `drgwatch-seal` (see EventSeal): only what the ingest ledger published, or the
  worker sent itself (internal commands, `_reprice` and `_release`), carries a valid one.
- Changelog of the worker's cases table: key as above, value the case state's JSON;
  END_MARKER_KEY closes each partition's records of a batch (see the worker).
- Dead-letter topic: messages the worker could not process, with where they were and why.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

CASE_SEQUENCE_HEADER = "drgwatch-case-seq"
SEAL_HEADER = "drgwatch-seal"
NOT_FROM_LEDGER = "not from the ingest ledger: produce contract v1 JSON to the intake topic"
SEAL_KEY_BYTES = 32
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
    raw = header(headers, CASE_SEQUENCE_HEADER)
    if isinstance(raw, bytes) and raw.isdigit():
        return int(raw)
    return None


def header(headers: Any, name: str) -> Any:
    """The value of header `name` (None if absent), from a mapping or (name, value) pairs."""
    if isinstance(headers, dict):
        return headers.get(name)
    pairs: Iterable[tuple[str, Any]] = headers or ()
    for found, value in pairs:
        if found == name:
            return value
    return None


class EventSeal:
    """The seal of an events-topic record: HMAC-SHA256, under a key kept in the database,
    of the record's key, value and ledger sequence header (NUL-separated; the value is
    JSON and the sequence digits, neither holds a NUL), as 64 hex digits.

    The API's publisher (request path and relay) seals every event it takes from the
    ingest ledger, and the worker its own commands; the worker refuses a record without a
    valid seal, so a record produced straight into the topic changes no case.
    """

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        if len(key) < SEAL_KEY_BYTES:
            raise ValueError(f"a seal key has at least {SEAL_KEY_BYTES} bytes, not {len(key)}")
        # keyed once: each record copies it rather than hashing the key's pads again
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def seal(self, key: bytes | None, value: bytes, case_seq: bytes | None) -> bytes:
        """The seal of a record (`case_seq`: its sequence header's value, if any)."""
        mac = self._keyed.copy()
        mac.update(b"".join((key or b"", b"\0", value, b"\0", case_seq or b"")))
        return mac.hexdigest().encode()

    def headers(
        self, key: bytes | None, value: bytes, case_seq: int | None
    ) -> list[tuple[str, bytes]]:
        """The headers of a record to publish: its ledger sequence number (if it has one)
        and its seal."""
        sequence = None if case_seq is None else str(case_seq).encode()
        sealed = [] if sequence is None else [(CASE_SEQUENCE_HEADER, sequence)]
        sealed.append((SEAL_HEADER, self.seal(key, value, sequence)))
        return sealed

    def verify(self, key: bytes | None, value: bytes, headers: Any) -> bool:
        """Whether a received record carries its valid seal (compared in constant time)."""
        if isinstance(headers, dict):
            found, case_seq = headers.get(SEAL_HEADER), headers.get(CASE_SEQUENCE_HEADER)
        else:
            found = case_seq = None
            for name, raw in headers or ():
                if name == SEAL_HEADER:
                    found = raw
                elif name == CASE_SEQUENCE_HEADER:
                    case_seq = raw
        if not isinstance(found, bytes):
            return False
        return hmac.compare_digest(found, self.seal(key, value, case_seq))


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
