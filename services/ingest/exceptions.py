"""Errors of the ingest service.

IngestError
 ├── PayloadRejected       the submission as a whole is unusable, with per-field errors (Invalid)
 │    └── PayloadTooLarge  a body or batch over its limit                              (TooLarge)
 └── LedgerUnavailable     the database cannot make events durable right now           (Unavailable)
"""

from __future__ import annotations

from services.errors import DrgwatchError, Invalid, TooLarge, Unavailable
from services.ingest.schemas import ItemResult
from services.validation import FieldError


class IngestError(DrgwatchError):
    pass


class PayloadRejected(IngestError, Invalid):
    def __init__(
        self,
        message: str,
        *,
        errors: list[FieldError] | None = None,
        results: list[ItemResult] | None = None,
    ) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.results = results or []


class PayloadTooLarge(PayloadRejected, TooLarge):
    pass


class LedgerUnavailable(IngestError, Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "the database is unavailable, so the events could not be made durable; retry"
            " later (a retry is safe: event ids make it idempotent)"
        )
