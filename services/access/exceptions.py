"""Errors of identities, keys and permissions.

AccessError
 ├── InvalidIdentity    a role, scope or name that cannot be         (Invalid)
 ├── IdentityExists     the name is taken                            (Conflict)
 ├── UnknownIdentity    no such identity                             (NotFound)
 ├── IdentityDisabled   a disabled identity gets no new key          (Conflict)
 ├── NotPermitted       the caller's role or scope does not allow it (NotAllowed)
 └── SignInRefused      a name and password that open no session     (Unauthenticated)
"""

from __future__ import annotations

from typing import Literal

from services.errors import (
    Conflict,
    DrgwatchError,
    Invalid,
    NotAllowed,
    NotFound,
    Unauthenticated,
)

RefusalReason = Literal["unknown_name", "no_password", "disabled", "wrong_password"]


class AccessError(DrgwatchError):
    pass


class InvalidIdentity(AccessError, Invalid):
    pass


class IdentityExists(AccessError, Conflict):
    pass


class UnknownIdentity(AccessError, NotFound):
    pass


class IdentityDisabled(AccessError, Conflict):
    pass


class NotPermitted(AccessError, NotAllowed):
    pass


class SignInRefused(AccessError, Unauthenticated):
    """One message whatever the `reason`, so that an answer does not tell which names
    exist or are disabled; the reason is for the log and the metrics only."""

    def __init__(self, reason: RefusalReason) -> None:
        super().__init__("the name or the password is wrong")
        self.reason: RefusalReason = reason
