"""Errors of identities, keys and permissions.

AccessError
 ├── InvalidIdentity    a role, scope or name that cannot be         (Invalid)
 ├── IdentityExists     the name is taken                            (Conflict)
 ├── UnknownIdentity    no such identity                             (NotFound)
 ├── IdentityDisabled   a disabled identity gets no new key          (Conflict)
 └── NotPermitted       the caller's role or scope does not allow it (NotAllowed)
"""

from __future__ import annotations

from services.errors import Conflict, DrgwatchError, Invalid, NotAllowed, NotFound


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
