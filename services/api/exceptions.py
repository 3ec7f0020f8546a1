"""Errors of the API service; each maps to one HTTP status in one handler (app.py).

DrgwatchApiError
 ├── Forbidden           403: the caller's role does not allow this action
 ├── NotFound            404: absent, or outside the caller's scope
 ├── Conflict            409
 └── Unavailable         503: a dependency (database, broker) is down; retry later
"""

from __future__ import annotations


class DrgwatchApiError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Forbidden(DrgwatchApiError):
    status_code = 403


class NotFound(DrgwatchApiError):
    status_code = 404


class Conflict(DrgwatchApiError):
    status_code = 409


class Unavailable(DrgwatchApiError):
    status_code = 503

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
