"""Errors of the storage layer.

StorageError
 └── BadCursor   a page cursor this service did not issue (Malformed)
"""

from __future__ import annotations

from services.errors import DrgwatchError, Malformed


class StorageError(DrgwatchError):
    pass


class BadCursor(StorageError, Malformed):
    pass
