"""Errors of the HTTP service itself (the domain services have their own, see
services/errors.py); services/api/errors.py turns every one into an answer.

ApiError
 ├── NotAuthenticated    no valid API key where one is required   (Unauthenticated)
 ├── CaseNotFound        no such case, or outside the scope       (NotFound)
 ├── RequestBodyTooLarge a body over its route's limit            (TooLarge)
 └── DatabaseUnavailable the database does not answer             (Unavailable)
"""

from __future__ import annotations

from services.errors import DrgwatchError, NotFound, TooLarge, Unauthenticated, Unavailable


class ApiError(DrgwatchError):
    pass


class NotAuthenticated(ApiError, Unauthenticated):
    pass


class CaseNotFound(ApiError, NotFound):
    pass


class RequestBodyTooLarge(ApiError, TooLarge):
    """`limit`: the route's body limit in bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than this route's limit of {limit} bytes")
        self.limit = limit


class DatabaseUnavailable(ApiError, Unavailable):
    def __init__(self) -> None:
        super().__init__("the database is unavailable; retry later")
