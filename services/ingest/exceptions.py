"""Errors of the ingest service.

IngestError
 ├── PayloadRejected     the body as a whole is unusable (422 / 413), with per-field errors
 └── LedgerUnavailable   the database cannot make events durable right now (503)
"""

from __future__ import annotations

from services.ingest.schemas import FieldError, ItemResult


class IngestError(Exception):
    pass


class PayloadRejected(IngestError):
    def __init__(
        self,
        message: str,
        *,
        status_code: int = 422,
        errors: list[FieldError] | None = None,
        results: list[ItemResult] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.errors = errors or []
        self.results = results or []


class LedgerUnavailable(IngestError):
    pass
