"""Dead letters: events that were refused or could not be processed, kept with why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from services.storage.models import DeadLetter

MAX_PAYLOAD_CHARS = 16_384


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
        return value[:64] if isinstance(value, str) else None

    if isinstance(raw, str):  # a body that was not JSON at all, as text
        payload = raw[:MAX_PAYLOAD_CHARS]
    else:
        try:
            payload = orjson.dumps(raw).decode()
        except TypeError:
            payload = repr(raw)[:MAX_PAYLOAD_CHARS]
    return DeadLetter(
        stage=stage,
        hospital_id=text("hospital_id"),
        case_id=text("case_id"),
        event_id=text("event_id"),
        reason=reason[:2000],
        errors=errors,
        payload=payload[:MAX_PAYLOAD_CHARS],
        received_at=now,
    )
