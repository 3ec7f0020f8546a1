"""How every drgwatch process logs: one JSON object a line, or lines for people.

A JSON line has `level`, `time` (ISO-8601, UTC), `logger` and `message`, and, where the
code knows them, `event_id`, `case_key`, `case_id`, `hospital_id`, `alert_id` and
`trace_id` (the request's W3C `traceparent` trace id or its `X-Request-ID`). A line about
one event passes its ids as `extra` (`ids_of` takes them from a record's bytes, which may
be anyone's). Nothing else of a record is written: the arguments a caller passes as
`extra` are taken from a fixed list, so an event's item names, a patient's fields or a
key never reach a line by way of a record's attributes. Messages themselves are the
callers' duty: drgwatch logs ids and counts, never payloads.

Lines for people (the embedded console) leave out the Kafka clients' INFO lines (group
joins, connections): the console carries drgwatch's own lines and anyone's warnings.
JSON lines keep them, and so does DEBUG.

uvicorn's access lines are rewritten to name the path without its query string (a
query may carry a token), in both forms.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from services.casecost.events import IDENTIFIER_PATTERN

LogFormat = Literal["json", "text"]

# the fields a record may carry into a JSON line beside its message (`extra=`)
CONTEXT_FIELDS = ("event_id", "case_key", "case_id", "hospital_id", "alert_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# libraries whose INFO lines are chatter on a console
CONSOLE_QUIET = ("aiokafka", "kafka")

# the ids `ids_of` takes from a document, each only when it is an identifier of the contract
ID_FIELDS = ("event_id", "hospital_id", "case_id")
IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

# a client's request id is written as it came only when it looks like one
REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")

trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "level": record.levelname,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = str(value)
        trace = record.__dict__.get("trace_id") or trace_id.get()
        if trace:
            line["trace_id"] = trace
        kind, _, stack = record.exc_info or (None, None, None)
        if kind is not None:
            # the exception's type and stack, not its message: a message may quote an input
            line["exception"] = kind.__name__
            line["stack"] = "".join(traceback.format_tb(stack))
        return orjson.dumps(line).decode()


# probes answered every few seconds by each API to the proxy, Kubernetes and Prometheus:
# their access lines are left out while they succeed
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AccessPathFilter(logging.Filter):
    """uvicorn's access record with the path alone (a query string may hold a token);
    none for a probe that succeeded."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # (client address, method, path with query, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path = args[2].split("?", 1)[0]
            if path in PROBE_PATHS and isinstance(args[4], int) and args[4] < 400:
                return False
            record.args = (args[0], args[1], path, args[3], args[4])
        return True


def handler(log_format: LogFormat) -> logging.Handler:
    """A stderr handler writing `log_format` lines."""
    stream = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        stream.setFormatter(JsonFormatter())
    else:
        stream.setFormatter(logging.Formatter(TEXT_FORMAT))
    stream.drgwatch = True  # type: ignore[attr-defined]  # configure() replaces its own
    return stream


def configure(log_format: LogFormat, level: str | int) -> None:
    """The root logger writes `log_format` lines at `level`; uvicorn's loggers and
    Faust's go through it (the Kafka clients' at WARNING and above in text lines)."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "drgwatch", False)]
    for old in ours:
        root.removeHandler(old)
    # as logging.basicConfig: a root that has handlers from elsewhere (a test's capture,
    # an embedding program) keeps them and gets none of ours
    if not root.handlers:
        root.addHandler(handler(log_format))
    root.setLevel(level)
    quiet = log_format == "text" and root.level > logging.DEBUG
    for name in CONSOLE_QUIET:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessPathFilter) for f in access.filters):
        access.addFilter(AccessPathFilter())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True


def ids_of(document: bytes | str | Any) -> dict[str, str]:
    """`extra` for a line about one event or alert: the event_id, hospital_id and case_id
    it names, as far as they are identifiers (at most 64 characters of A-Z a-z 0-9 . _ : -);
    nothing else of it. A document is JSON (bytes or text) or already decoded."""
    if isinstance(document, bytes | str):
        try:
            document = orjson.loads(document)
        except orjson.JSONDecodeError:
            return {}
    if not isinstance(document, dict):
        return {}
    ids = {}
    for name in ID_FIELDS:
        value = document.get(name)
        if isinstance(value, str) and len(value) <= 64 and IDENTIFIER.fullmatch(value):
            ids[name] = value
    return ids


def trace_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The trace id of a request: W3C `traceparent`'s, else its `X-Request-ID`."""
    request_id = None
    for name, value in headers:
        if name == b"traceparent":
            parts = value.split(b"-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return parts[1].decode("ascii", "replace")
        elif name == b"x-request-id" and REQUEST_ID.fullmatch(value):
            request_id = value.decode("ascii")
    return request_id
