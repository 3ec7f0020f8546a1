"""Errors of the HTTP service itself (the domain services have their own, see
services/errors.py); services/api/errors.py turns every one into an answer.

ApiError
 ├── NotAuthenticated    no valid API key where one is required   (Unauthenticated)
 ├── CaseNotFound        no such case, or outside the scope       (NotFound)
 ├── DatabaseUnavailable the database does not answer             (Unavailable)
 ├── UnknownHost         the Host header names another service    (Malformed)
 ├── ForeignOrigin       sent by a web page of another origin     (NotAllowed)
 └── UnsupportedBody     a body not in the route's media type     (UnsupportedMedia)
"""

from __future__ import annotations

from services.errors import (
    DrgwatchError,
    Malformed,
    NotAllowed,
    NotFound,
    Unauthenticated,
    Unavailable,
    UnsupportedMedia,
)


class ApiError(DrgwatchError):
    pass


class NotAuthenticated(ApiError, Unauthenticated):
    pass


class CaseNotFound(ApiError, NotFound):
    pass


class DatabaseUnavailable(ApiError, Unavailable):
    def __init__(self) -> None:
        super().__init__("the database is unavailable; retry later")


class UnknownHost(ApiError, Malformed):
    pass


class ForeignOrigin(ApiError, NotAllowed):
    pass


class UnsupportedBody(ApiError, UnsupportedMedia):
    pass
