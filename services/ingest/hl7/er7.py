"""Reading HL7 v2 ER7 text: submissions, messages, segments and their values.

`hl7` (python-hl7) splits each message by the encoding characters its MSH-1/MSH-2
declare; this module adds what a receiver needs around it:

- Segment separators: the standard is a carriage return, but files and HTTP clients
  send `\\r\\n` or `\\n`; all three end a segment (a line break inside a value must be
  escaped as `\\.br\\` or `\\X0D\\` anyway).
- Character sets: a body is decoded by the charset its media type names, else by the
  first message's MSH-18 (`UNICODE UTF-8`, `GB 18030-2000`, `8859/1`, ...), else UTF-8.
- Escape sequences (`\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh..\\`, `\\.br\\`) are undone
  here, with the message's own escape character; hex bytes are decoded in the message's
  charset, so `\\XE4B8AD\\` in a UTF-8 message is one character. Highlighting
  (`\\H\\ \\N\\`) is dropped; any other sequence is kept as written.
- Batches: FHS/BHS ... BTS/FTS around any number of messages; a BTS-1 or FTS-1 count
  that does not match what arrived refuses the submission (a file cut short).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any

import hl7

from services.ingest.hl7.exceptions import Hl7Unreadable

# MSH-18 values (HL7 table 0211) and the Python codecs that read them
CHARSETS = {
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/15": "iso8859-15",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "GBK": "gbk",
    "CNS 11643-1992": "big5",
    "BIG-5": "big5",
    "ISO IR87": "iso2022_jp",
    "KS X 1001": "euc_kr",
}
BATCH_SEGMENTS = ("FHS", "BHS", "BTS", "FTS")
_MSH18 = re.compile(rb"MSH(.)(?:[^\r\n]*?\1){16}([^\r\n|^~\\&]*)")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a value sits: segment, its occurrence (1-based), field, component."""

    segment: str
    field: int
    sequence: int = 1
    component: int = 1

    def __str__(self) -> str:
        where = f"{self.segment}-{self.field}"
        if self.component != 1:
            where += f".{self.component}"
        return where if self.sequence == 1 else f"{where} ({self.segment} #{self.sequence})"


@dataclass(slots=True)
class Segment:
    """One segment of a message: its values read with the message's encoding."""

    name: str
    sequence: int
    parsed: Any  # hl7.Segment
    message: Message

    def value(self, number: int, component: int = 1, subcomponent: int = 1) -> str:
        """The field's first non-empty repetition at that component, unescaped ('' if absent)."""
        for repetition in range(1, self.repetitions(number) + 1):
            found = self.at(number, repetition, component, subcomponent)
            if found:
                return found
        return ""

    def repetitions(self, number: int) -> int:
        if number >= len(self.parsed):
            return 0
        node = self.parsed(number)
        return len(node) if node and not isinstance(node[0], str) else 1

    def at(self, number: int, repetition: int, component: int = 1, subcomponent: int = 1) -> str:
        if number >= len(self.parsed):
            return ""
        node: Any = self.parsed(number)
        if self.name == "MSH" and number in (1, 2):
            return str(node[0]) if repetition == component == subcomponent == 1 else ""
        for index in (repetition, component, subcomponent):
            if isinstance(node, str):
                return self.message.unescape(node) if index == 1 else ""
            if len(node) == 1 and isinstance(node[0], str):
                node = node[0]  # no deeper separator in this value
                if index != 1:
                    return ""
                continue
            if index > len(node):
                return ""
            node = node(index)
        if not isinstance(node, str):
            node = str(node)
        return self.message.unescape(node).strip()

    def location(self, number: int, component: int = 1) -> Location:
        return Location(self.name, number, self.sequence, component)


@dataclass(slots=True)
class Message:
    """One message: its text (segments separated by `\\r`) and its parsed segments."""

    text: str
    charset: str
    parsed: Any = field(repr=False)  # hl7.Message
    segments: list[Segment] = field(default_factory=list, repr=False)

    @classmethod
    def read(cls, text: str, charset: str) -> Message:
        _check_encoding(text)
        try:
            parsed = hl7.parse(text)
        except (hl7.ParseException, IndexError, ValueError, AssertionError) as error:
            raise Hl7Unreadable(f"not an HL7 v2 message: {error or type(error).__name__}") from None
        message = cls(text=text, charset=charset, parsed=parsed)
        counts: dict[str, int] = {}
        for segment in parsed:
            name = str(segment[0][0]) if segment and segment[0] else ""
            counts[name] = counts.get(name, 0) + 1
            message.segments.append(Segment(name, counts[name], segment, message))
        return message

    @property
    def separators(self) -> str:
        """Segment, field, repetition, component, subcomponent separators."""
        return str(self.parsed.separators)

    def _separators(self) -> tuple[str, str, str, str]:
        """Field, repetition, component and subcomponent separators."""
        separators = self.separators
        return separators[1], separators[2], separators[3], separators[4]

    @property
    def escape(self) -> str:
        return str(self.parsed.esc)

    @property
    def encoding_characters(self) -> str:
        return self.header.at(2, 1)

    @property
    def header(self) -> Segment:
        return self.segments[0]

    def all(self, name: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.name == name]

    def first(self, name: str) -> Segment | None:
        for segment in self.segments:
            if segment.name == name:
                return segment
        return None

    @property
    def control_id(self) -> str:
        return self.header.value(10)

    @property
    def sending_application(self) -> str:
        return self.header.value(3)

    @property
    def sending_facility(self) -> str:
        return self.header.value(4)

    @property
    def message_code(self) -> str:
        return self.header.value(9, 1).upper()

    @property
    def trigger_event(self) -> str:
        return self.header.value(9, 2).upper()

    @property
    def version(self) -> str:
        return self.header.value(12)

    def unescape(self, value: str) -> str:
        """`value` with its escape sequences undone (see the module docstring)."""
        escape = self.escape
        if not escape or escape not in value:
            return value
        field_sep, repetition, component, subcomponent = self._separators()
        plain = {
            "F": field_sep,
            "S": component,
            "T": subcomponent,
            "R": repetition,
            "E": escape,
            "H": "",
            "N": "",
            ".br": "\n",
            ".sp": "\n",
        }
        parts: list[str] = []
        position = 0
        while position < len(value):
            start = value.find(escape, position)
            end = value.find(escape, start + 1) if start >= 0 else -1
            if start < 0 or end < 0:
                parts.append(value[position:])
                break
            parts.append(value[position:start])
            sequence = value[start + 1 : end]
            if sequence in plain:
                parts.append(plain[sequence])
            elif sequence[:1] == "X" and _is_hex(sequence[1:]):
                parts.append(bytes.fromhex(sequence[1:]).decode(self.charset, "replace"))
            else:
                parts.append(value[start : end + 1])
            position = end + 1
        return "".join(parts)

    def escaped(self, text: str) -> str:
        """`text` made safe to stand in one component of this message."""
        escape = self.escape or "\\"
        field_sep, repetition, component, subcomponent = self._separators()
        text = text.replace(escape, f"{escape}E{escape}")
        for character, code in (
            (field_sep, "F"),
            (repetition, "R"),
            (component, "S"),
            (subcomponent, "T"),
        ):
            text = text.replace(character, f"{escape}{code}{escape}")
        return text.replace("\r", f"{escape}.br{escape}").replace("\n", f"{escape}.br{escape}")


def _check_encoding(text: str) -> None:
    """MSH-1 and MSH-2: five distinct separators (and a truncation character in v2.7+),
    none a letter, digit or space."""
    if not text.startswith("MSH") or len(text) < 8:
        raise Hl7Unreadable("a message starts with MSH and its encoding characters")
    field_sep = text[3]
    end = text.find(field_sep, 4)
    encoding = text[4:end] if end >= 0 else ""
    characters = field_sep + encoding
    if (
        len(encoding) not in (4, 5)
        or len(set(characters)) != len(characters)
        or any(c.isalnum() or c.isspace() for c in characters)
    ):
        raise Hl7Unreadable(
            f"MSH-1/MSH-2: {characters!r} are not HL7 encoding characters (five distinct"
            " separators such as |^~\\&, none a letter, digit or space)"
        )


def _is_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass(slots=True)
class Submission:
    """What one body held: its messages in order, and its batch envelope if it had one."""

    messages: list[str]
    charset: str
    file_header: str | None = None
    batch_header: str | None = None


def charset_of(raw: bytes, declared: str | None = None) -> str:
    """The codec a body is read with: the declared charset, else the first MSH-18."""
    if declared:
        try:
            return codecs.lookup(declared).name
        except LookupError:
            raise Hl7Unreadable(f"unknown charset {declared!r}") from None
    found = _MSH18.search(raw)
    if found and found.group(2).strip():
        name = found.group(2).decode("ascii", "replace").strip().upper()
        if name not in CHARSETS:
            raise Hl7Unreadable(f"MSH-18: unknown character set {name!r}")
        return CHARSETS[name]
    return "utf-8"


def segment_lines(text: str) -> list[str]:
    """The segments of ER7 text, whichever of `\\r\\n`, `\\r`, `\\n` ends them."""
    normal = text.replace("\r\n", "\r").replace("\n", "\r")
    return [line for line in (part.strip(" \t\x0b\x1c") for part in normal.split("\r")) if line]


def split_submission(raw: bytes, declared_charset: str | None = None) -> Submission:
    """A body's messages (each as `\\r`-separated text), or Hl7Unreadable naming why not."""
    charset = charset_of(raw, declared_charset)
    try:
        text = raw.decode(charset)
    except UnicodeDecodeError as error:
        raise Hl7Unreadable(
            f"the body is not valid {charset} (byte {error.start}); declare the charset in"
            " MSH-18 or in the media type"
        ) from None
    lines = segment_lines(text.lstrip("\ufeff"))
    if not lines:
        raise Hl7Unreadable("the body holds no HL7 segment")
    submission = Submission(messages=[], charset=charset)
    current: list[str] = []
    batches = 0
    in_batch = 0  # messages since the last BHS
    for line in lines:
        name = line[:3]
        if name in BATCH_SEGMENTS and current:
            submission.messages.append("\r".join(current))
            current = []
        if name == "FHS":
            submission.file_header = line
        elif name == "BHS":
            submission.batch_header = line
            batches += 1
            in_batch = 0
        elif name == "BTS":
            _check_count(line, in_batch, "messages")
        elif name == "FTS":
            _check_count(line, max(batches, 1), "batches")
        elif name == "MSH":
            if current:
                submission.messages.append("\r".join(current))
            current = [line]
            in_batch += 1
        elif not current:
            raise Hl7Unreadable(f"segment {name!r} before any MSH: every message starts with MSH")
        else:
            current.append(line)
    if current:
        submission.messages.append("\r".join(current))
    if not submission.messages:
        raise Hl7Unreadable("the body holds no message (no MSH segment)")
    return submission


def _check_count(trailer: str, arrived: int, what: str) -> None:
    """A trailer's count (BTS-1 messages, FTS-1 batches) must match what arrived."""
    count = _count(trailer)
    if count is not None and count != arrived:
        raise Hl7Unreadable(
            f"{trailer[:3]}-1 counts {count} {what} but {arrived} arrived: the batch may be"
            " cut short; nothing was recorded, send it again"
        )


def _count(trailer: str) -> int | None:
    separator = trailer[3:4]
    fields = trailer.split(separator) if separator else []
    text = fields[1].strip() if len(fields) > 1 else ""
    return int(text) if text.isdigit() else None
