"""HL7 v2 acknowledgements: one ACK per message, and the batch envelope around them.

An ACK answers in the message's own encoding characters and version: MSH with the
sender and receiver swapped, MSA with the code (AA accepted and durable, AE an error
the sender can correct, AR refused) and the original MSH-10, and one ERR per problem
(HL7 v2.5: ERR-2 the location SEGMENT^SEQUENCE^FIELD^REPETITION^COMPONENT, ERR-3 the
HL7 table 0357 code, ERR-4 severity E, or W for a note on an accepted message, ERR-8 the
reason). MSA-3 repeats the first reason for receivers that read only the MSA.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from services.ingest.hl7.er7 import Message
from services.ingest.hl7.mapping import AckCode, Problem

APPLICATION = "DRGWATCH"
DEFAULT_ENCODING = "^~\\&"
DEFAULT_VERSION = "2.5"


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def _control_id() -> str:
    return uuid.uuid4().hex[:20].upper()


def _raw(message: Message | None, number: int) -> str:
    """A header field as it was written (escaped), to echo it back."""
    if message is None or number >= len(message.header.parsed):
        return ""
    return str(message.header.parsed(number))


def build_ack(
    message: Message | None,
    code: AckCode,
    *,
    problems: list[Problem],
    notes: list[Problem],
    now: datetime,
    fallback_reason: str = "",
) -> str:
    """The ACK of `message` (None: a message too broken to read, answered with defaults)."""
    field_sep = message.separators[1] if message else "|"
    encoding = message.encoding_characters if message else DEFAULT_ENCODING
    component = encoding[0] if encoding else "^"

    def escaped(text: str) -> str:
        return message.escaped(text) if message else _escape_default(text)

    trigger = message.trigger_event if message else ""
    header = [
        "MSH",
        encoding,
        APPLICATION,
        APPLICATION,
        _raw(message, 3),
        _raw(message, 4),
        _stamp(now),
        "",
        component.join(["ACK", escaped(trigger), "ACK"]),
        _control_id(),
        _raw(message, 11) or "P",
        _raw(message, 12) or DEFAULT_VERSION,
    ]
    first = problems[0] if problems else (notes[0] if notes else None)
    text = str(first) if first else ""
    if not text and fallback_reason:
        text = fallback_reason
    segments = [
        field_sep.join(header[:1]) + field_sep + field_sep.join(header[1:]),
        field_sep.join(["MSA", code, _raw(message, 10), escaped(text[:200])]).rstrip(field_sep),
    ]
    for problem, severity in [(p, "E") for p in problems] + [(n, "W") for n in notes]:
        segments.append(_err(problem, severity, field_sep, component, escaped))
    if not problems and code != "AA" and fallback_reason:
        segments.append(
            _err(Problem(fallback_reason, None, 207), "E", field_sep, component, escaped)
        )
    return "\r".join(segments) + "\r"


def _err(
    problem: Problem,
    severity: str,
    field_sep: str,
    component: str,
    escaped: Callable[[str], str],
) -> str:
    where = problem.location
    location = (
        component.join(
            [where.segment, str(where.sequence), str(where.field), "1", str(where.component)]
        )
        if where is not None
        else ""
    )
    code = component.join([str(problem.code), "", "HL70357"])
    fields = ["ERR", "", location, code, severity, "", "", "", escaped(problem.reason)]
    return field_sep.join(fields)


def _escape_default(text: str) -> str:
    text = text.replace("\\", "\\E\\")
    for character, code in (("|", "F"), ("~", "R"), ("^", "S"), ("&", "T")):
        text = text.replace(character, f"\\{code}\\")
    return text.replace("\r", " ").replace("\n", " ")


def wrap_batch(
    acks: list[str], *, file_header: str | None, batch_header: str | None, now: datetime
) -> str:
    """ACKs of a batch in BHS/BTS (and FHS/FTS when the request had a file header),
    answering the request's batch control id (BHS-11, FHS-11) in BHS-12 / FHS-12."""

    def header(name: str, request: str | None) -> str:
        separator = request[3] if request and len(request) > 3 else "|"
        fields = request.split(separator) if request else []
        encoding = fields[1] if len(fields) > 1 else DEFAULT_ENCODING
        sender = fields[2:4] + [""] * (2 - len(fields[2:4]))
        their_id = fields[10] if len(fields) > 10 else ""  # BHS-11 / FHS-11
        return separator.join(
            [
                name,
                encoding,
                APPLICATION,
                APPLICATION,
                *sender,
                _stamp(now),
                "",
                "",
                "",
                _control_id(),
                their_id,
            ]
        )

    lines: list[str] = []
    if file_header is not None:
        lines.append(header("FHS", file_header))
    lines.append(header("BHS", batch_header))
    lines.extend(ack.rstrip("\r") for ack in acks)
    separator = (batch_header or file_header or "BHS|")[3]
    lines.append(f"BTS{separator}{len(acks)}")
    if file_header is not None:
        lines.append(f"FTS{separator}1")
    return "\r".join(lines) + "\r"
