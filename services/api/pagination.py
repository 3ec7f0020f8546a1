"""Opaque, stable cursors: the last sort key of a page, base64url-encoded."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from services.api.exceptions import DrgwatchApiError


class BadCursor(DrgwatchApiError):
    status_code = 400


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str | None, length: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadCursor("cursor: not a cursor this service issued") from None
    if not isinstance(key, list) or len(key) != length:
        raise BadCursor("cursor: not a cursor this service issued")
    return key
