"""Path, query and header parameters shared by the routes.

Ids in paths and filters follow the event contract's character rules (identifiers and
codes, services/casecost/events.py), so what cannot be an id is refused with a 422
naming the parameter before any query runs: a NUL byte, which PostgreSQL text cannot
hold, never reaches the database, and a `/` never splits a path. Times must carry an
offset and stay within the years a database can store once converted to UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Header, Path, Query
from pydantic import AfterValidator, BeforeValidator

from services.casecost.events import CharacterRule, Code, Identifier

HospitalId = Annotated[Identifier, Path(description="the hospital's id")]
CaseId = Annotated[Identifier, Path(description="the case's id within its hospital")]
# alert ids are UUIDs; anything of their characters is looked up (and may be 404)
AlertId = Annotated[
    str,
    Path(pattern=r"^[0-9A-Za-z-]{1,36}$"),
    CharacterRule("must be an alert id: up to 36 letters, digits and -"),
]
HospitalFilter = Annotated[Identifier | None, Query()]
CaseFilter = Annotated[Identifier | None, Query()]
DepartmentFilter = Annotated[Code | None, Query()]
Cursor = Annotated[str | None, Query(max_length=512)]


def _storable(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("must be ISO-8601 with a UTC offset, e.g. 2026-11-23T08:15:00+08:00")
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None
    return moment


Moment = Annotated[datetime, AfterValidator(_storable)]
MAX_SEQUENCE = 2**63 - 1


def _sequence(value: Any) -> int | None:
    """A stream position as the stream sent it: ASCII digits, within a 64-bit integer."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        raise ValueError("must be the id of an event this stream sent (digits only)")
    if len(value) > 19 or int(value) > MAX_SEQUENCE:
        raise ValueError("is larger than any event id this stream sends")
    return int(value)


LastEventId = Annotated[
    int | None,
    Header(alias="Last-Event-ID", description="resume after this event id (`id:` of the stream)"),
    BeforeValidator(_sequence),
]
