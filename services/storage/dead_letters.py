"""Dead letters: events that were refused or could not be processed, kept with why.

What was refused is often what cannot be stored as it is: PostgreSQL text holds no NUL
character, and one in a refused event's id, field name or body made the whole row (and
with it the transaction of the valid events beside it) fail. Every text of a dead letter
is kept with each NUL written as the six characters `\\u0000`, as JSON would escape it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.storage.engine import insert_ignoring
from services.storage.models import DeadLetter

MAX_PAYLOAD_CHARS = 16_384
NUL = "\x00"
ESCAPED_NUL = "\\u0000"


def storable(text: str) -> str:
    """`text` with every NUL escaped, so that any database can hold it."""
    return text.replace(NUL, ESCAPED_NUL) if NUL in text else text


def _storable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {key: storable(value) if isinstance(value, str) else value for key, value in error.items()}
        for error in errors
    ]


def dead_letter(
    *,
    stage: str,
    raw: Any,
    reason: str,
    errors: list[dict[str, Any]],
    now: datetime,
    attribute: bool = True,
) -> DeadLetter:
    """A dead-letter row: the payload as it came (decoded JSON, or the text of a body that
    was not JSON; cut to 16 KB), with the hospital, case and event ids it names (none
    with `attribute=False`: then it belongs to no hospital's list)."""

    def text(name: str) -> str | None:
        value = raw.get(name) if attribute and isinstance(raw, dict) else None
        return storable(value)[:64] if isinstance(value, str) else None

    if isinstance(raw, str):  # a body that was not JSON at all, as text
        payload = storable(raw[:MAX_PAYLOAD_CHARS])
    else:
        try:
            payload = orjson.dumps(raw).decode()  # JSON escapes NUL itself
        except TypeError:
            payload = storable(repr(raw)[:MAX_PAYLOAD_CHARS])
    return DeadLetter(
        stage=stage,
        hospital_id=text("hospital_id"),
        case_id=text("case_id"),
        event_id=text("event_id"),
        reason=storable(reason[:2000]),
        errors=_storable_errors(errors),
        payload=payload[:MAX_PAYLOAD_CHARS],
        received_at=now,
    )


async def keep_once(db_session: AsyncSession, letters: Mapping[str, DeadLetter]) -> None:
    """Keep each letter under its source key (see DeadLetter.source_key); one whose key is
    kept already is left out, so that a source read again adds no second letter."""
    if not letters:
        return
    table = cast(Table, DeadLetter.__table__)
    rows = [
        {
            **{column.key: getattr(letter, column.key) for column in table.columns},
            "source_key": key,
        }
        for key, letter in letters.items()
    ]
    for row in rows:
        del row["id"]
    statement = insert_ignoring(db_session.bind.dialect.name, table)  # type: ignore[union-attr]
    await db_session.execute(statement, rows)
