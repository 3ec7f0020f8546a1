"""Opaque, stable cursors: the last sort key of a page, base64url-encoded."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from services.storage.exceptions import BadCursor


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_int_cursor(cursor: str | None) -> int | None:
    """A cursor holding one sequence number (alerts, dead letters)."""
    key = decode_cursor(cursor, 1)
    if key is None:
        return None
    value = key[0]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise BadCursor("cursor: not a cursor this service issued")
    return value


def decode_cursor(cursor: str | None, length: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadCursor("cursor: not a cursor this service issued") from None
    if not isinstance(key, list) or len(key) != length:
        raise BadCursor("cursor: not a cursor this service issued")
    if not all(isinstance(part, str | int) and not isinstance(part, bool) for part in key):
        raise BadCursor("cursor: not a cursor this service issued")
    # the keys issued are ids and numbers; a hand-made one could carry a NUL byte, which
    # PostgreSQL text cannot hold, into the query
    if any(isinstance(part, str) and not part.isprintable() for part in key):
        raise BadCursor("cursor: not a cursor this service issued")
    return key
