"""Errors of the HTTP service itself (the domain services have their own, see
services/errors.py); services/api/errors.py turns every one into an answer.

ApiError
 ├── NotAuthenticated    no valid key or session where needed     (Unauthenticated)
 ├── CaseNotFound        no such case, or outside the scope       (NotFound)
 ├── RequestBodyTooLarge a body over its route's limit            (TooLarge)
 ├── DatabaseUnavailable the database does not answer             (Unavailable)
 ├── UnknownHost         the Host header names another service    (Malformed)
 ├── ForeignOrigin       sent by a web page of another origin     (NotAllowed)
 ├── UnsupportedBody     a body not in the route's media type     (UnsupportedMedia)
 ├── CsrfTokenRefused    a signed-in change lacks its CSRF token  (NotAllowed)
 ├── TooManyWrongKeys    this address sent too many wrong keys    (RateLimited)
 ├── TooManySignIns      failed sign-ins of a name or address     (RateLimited)
 └── TooManyStreams      this caller holds its most live streams  (RateLimited)
"""

from __future__ import annotations

from services.errors import (
    DrgwatchError,
    Malformed,
    NotAllowed,
    NotFound,
    RateLimited,
    TooLarge,
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


class PageAssetNotFound(ApiError, NotFound):
    pass


class RequestBodyTooLarge(ApiError, TooLarge):
    """`limit`: the route's body limit in bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than this route's limit of {limit} bytes")
        self.limit = limit


class DatabaseUnavailable(ApiError, Unavailable):
    def __init__(self) -> None:
        super().__init__("the database is unavailable; retry later")


class UnknownHost(ApiError, Malformed):
    pass


class ForeignOrigin(ApiError, NotAllowed):
    pass


class UnsupportedBody(ApiError, UnsupportedMedia):
    pass


class TooManyWrongKeys(ApiError, RateLimited):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many wrong API keys from this address; retry later", retry_after)


class CsrfTokenRefused(ApiError, NotAllowed):
    pass


class TooManySignIns(ApiError, RateLimited):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many failed sign-ins for this name or from this address; retry later",
            retry_after,
        )


class TooManyStreams(ApiError, RateLimited):
    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"this caller has {limit} live streams open, the most it may; close one first",
            retry_after,
        )
