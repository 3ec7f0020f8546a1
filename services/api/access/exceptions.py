"""Errors of identities and keys.

DrgwatchApiError
 └── InvalidIdentity     422: a role, scope or name that cannot be
      ├── IdentityExists 409
      └── UnknownIdentity 404
"""

from __future__ import annotations

from services.api.exceptions import DrgwatchApiError


class InvalidIdentity(DrgwatchApiError):
    status_code = 422


class IdentityExists(InvalidIdentity):
    status_code = 409


class UnknownIdentity(InvalidIdentity):
    status_code = 404
