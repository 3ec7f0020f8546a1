"""The kinds of failure drgwatch reports, shared by every service.

Each service has one exception base of its own (`IngestError`, `ReferenceDataError`,
`AccessError`, `AlertingError`, `StorageError`, `ApiError`), and each concrete error
also names its kind by inheriting one of the classes below. The services say what went
wrong; only the HTTP service decides what that means on the wire, in one table
(services/api/errors.py):

    DrgwatchError
     ├── Malformed      the request cannot be read (a cursor this service never issued)
     ├── Invalid        well-formed but refused; the message names the field
     │    ├── TooLarge  a body or batch over its limit
     │    └── UnsupportedMedia  a body in a media type the route does not take
     ├── Unauthenticated  no valid credential where one is required
     ├── NotAllowed     the caller's role or scope does not allow it
     ├── NotFound       absent, or outside the caller's scope (the two look the same)
     ├── Conflict       the current state does not allow it
     ├── RateLimited    too many requests of this kind from this caller; retry later
     └── Unavailable    a dependency (database, broker) is down; retry later
"""

from __future__ import annotations


class DrgwatchError(Exception):
    """Base of every error drgwatch raises on purpose; `message` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Malformed(DrgwatchError):
    pass


class Invalid(DrgwatchError):
    pass


class TooLarge(Invalid):
    pass


class UnsupportedMedia(Invalid):
    pass


class Unauthenticated(DrgwatchError):
    pass


class NotAllowed(DrgwatchError):
    pass


class NotFound(DrgwatchError):
    pass


class Conflict(DrgwatchError):
    pass


class RateLimited(DrgwatchError):
    """`retry_after`: whole seconds until the caller may try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class Unavailable(DrgwatchError):
    """`retry_after`: seconds a client should wait before trying again."""

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after
