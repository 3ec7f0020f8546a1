"""Files `drgwatch feed` sends to the intake topic, read into contract v1 events; no I/O.

Only what cannot be read at all is caught here (a line that is not a JSON object, a CSV
row with the wrong number of cells, an HL7 message that does not map); each is reported
with its line (or message) number and not sent. Whether an event meets the contract is
the intake's to judge, so that the answer is the same as for any other producer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from services.casecost.chargemaster import ChargeBook
from services.ingest.hl7.er7 import Message, split_submission
from services.ingest.hl7.exceptions import Hl7Unreadable
from services.ingest.hl7.mapping import map_message
from services.ingest.hl7.profile import Profiles
from services.wire import case_key

FileFormat = Literal["ndjson", "csv", "hl7"]
# the contract v1 fields, each a CSV column; a row leaves empty the fields its type lacks
CSV_COLUMNS = (
    "event_id",
    "type",
    "hospital_id",
    "case_id",
    "occurred_at",
    "department",
    "drg_code",
    "insurance_scheme",
    "admitted_at",
    "discharged_at",
    "item_code",
    "item_name",
    "category",
    "quantity",
    "unit_price",
    "amount",
    "ordered_by",
    "order_id",
    "reverses_event_id",
    "reason",
)
REQUIRED_COLUMNS = ("event_id", "type", "hospital_id", "case_id", "occurred_at")


class FileUnreadable(Exception):
    """The file as a whole cannot be read (e.g. a CSV header naming unknown columns)."""


@dataclass(frozen=True, slots=True)
class FileEvent:
    """An event read from a file, with where it was: its line, or its HL7 message's
    number (`unit` says which)."""

    line: int
    event: dict[str, Any]
    unit: str = "line"

    @property
    def key(self) -> bytes:
        """`hospital_id/case_id`, the key the intake recommends (it re-keys anyway)."""
        hospital_id, case_id = self.event.get("hospital_id"), self.event.get("case_id")
        return case_key(str(hospital_id or ""), str(case_id or ""))

    @property
    def value(self) -> bytes:
        """The record's value: the event as JSON."""
        return orjson.dumps(self.event)


@dataclass(frozen=True, slots=True)
class FileMessage:
    """An HL7 v2 message read from a file, sent as it is in one record (the intake maps
    it, and records it whole or refuses it), keyed by the hospital and case it maps to."""

    line: int
    value: bytes
    key: bytes
    unit: str = "message"


@dataclass(frozen=True, slots=True)
class LineProblem:
    line: int
    reason: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.unit} {self.line}: {self.reason}"


# what a file gives to send, one intake record each
FileRecord = FileEvent | FileMessage
Read = FileRecord | LineProblem


def guess_format(name: str) -> FileFormat:
    """The format a file's name suggests: .csv, .hl7/.txt/.er7, else NDJSON."""
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".hl7", ".er7")):
        return "hl7"
    return "ndjson"


def read_ndjson(text: str) -> Iterator[Read]:
    """One JSON object a line; blank lines are skipped."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            yield LineProblem(number, f"not JSON: {error}")
            continue
        if not isinstance(value, dict):
            yield LineProblem(number, "not a JSON object (one event a line)")
            continue
        yield FileEvent(number, value)


def check_header(header: list[str]) -> None:
    unknown = [name for name in header if name not in CSV_COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    problems = []
    if unknown:
        problems.append(f"unknown columns {', '.join(unknown)}")
    if missing:
        problems.append(f"missing columns {', '.join(missing)}")
    if repeated:
        problems.append(f"repeated columns {', '.join(repeated)}")
    if problems:
        raise FileUnreadable(
            f"line 1 (the header): {'; '.join(problems)}; the columns are the contract's"
            f" fields: {', '.join(CSV_COLUMNS)}"
        )


def read_csv(text: str) -> Iterator[Read]:
    """A header of contract field names, then one event a row; an empty cell is a field
    the event does not have. FileUnreadable if the header is not one of those."""
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header: list[str] | None = None
    for row in rows:
        if header is None:
            header = [name.strip() for name in row]
            check_header(header)
            continue
        number = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield LineProblem(number, f"{len(row)} cells where the header has {len(header)}")
            continue
        yield FileEvent(
            number, {name: cell.strip() for name, cell in zip(header, row, strict=True) if cell}
        )
    if header is None:
        raise FileUnreadable("the file is empty: a CSV starts with a header of field names")


def read_hl7(raw: bytes, *, profiles: Profiles, zone: ZoneInfo) -> Iterator[Read]:
    """A file of HL7 v2 messages (FHS/BHS batches or bare MSH...), each mapped by the
    facility profiles, as POST /v1/hl7 maps them, to report here what cannot be; numbered
    by message, from 1."""
    try:
        submission = split_submission(raw)
    except Hl7Unreadable as error:
        raise FileUnreadable(error.message) from None
    for number, text in enumerate(submission.messages, start=1):
        try:
            message = Message.read(text, submission.charset)
        except Hl7Unreadable as error:
            yield LineProblem(number, error.message, "message")
            continue
        # on the sender's machine, which reads no database, only to key the message and
        # report what cannot be taken: the intake maps it again, with the chargemasters
        mapped = map_message(message, profiles, zone, ChargeBook())
        if mapped.refusal is not None:
            reasons = "; ".join(str(problem) for problem in mapped.problems)
            control_id = message.control_id or "(no MSH-10)"
            yield LineProblem(number, f"{control_id}: {reasons}", "message")
            continue
        key = case_key(mapped.hospital_id or "", mapped.case_id or "")
        yield FileMessage(number, text.encode(submission.charset, "replace"), key)


def read_file(
    raw: bytes, file_format: FileFormat, *, profiles: Profiles | None, zone: ZoneInfo
) -> list[Read]:
    """Every event and problem of a file, in file order."""
    if file_format == "hl7":
        assert profiles is not None, "HL7 needs the facility profiles"
        return list(read_hl7(raw, profiles=profiles, zone=zone))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileUnreadable(f"not UTF-8 text (byte {error.start})") from None
    return list(read_ndjson(text) if file_format == "ndjson" else read_csv(text))
