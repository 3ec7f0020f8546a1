"""Identities on the wire (admins only): create, list, another key, password, disable;
and the caller's own sign-in session."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.access.principal import Role

ScopeEntry = Annotated[str, Field(min_length=1, max_length=64)]
# taken as typed: spaces at either end are part of a password (the length rules are
# services/access/passwords.py's, which names them in its refusal)
Password = Annotated[str, StringConstraints(strip_whitespace=False), Field(max_length=4096)]


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role
    hospitals: Annotated[list[ScopeEntry], Field(max_length=1000)] = []  # "*": every hospital
    departments: Annotated[list[ScopeEntry], Field(max_length=1000)] = []  # department heads
    # a person who signs in; only its hash is kept (length rules: services/access/passwords)
    password: Password | None = None


class IdentityOut(BaseModel):
    id: str
    name: str
    role: str
    hospitals: list[str]
    departments: list[str]
    created_at: datetime
    disabled_at: datetime | None
    live_keys: int
    password_set: bool  # whether the identity can sign in with a password


class IdentityList(BaseModel):
    items: list[IdentityOut]
    next_cursor: str | None


class KeyIssued(BaseModel):
    """A new API key: shown this once, only its digest is kept."""

    identity: IdentityOut
    api_key: str


class PasswordIn(BaseModel):
    """A new password for an identity (set, or changed)."""

    model_config = ConfigDict(extra="forbid")

    password: Password


class SignInIn(BaseModel):
    """A person's name and password, to open a session."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    password: Password


class SessionIdentity(BaseModel):
    """Who the caller is, as the session endpoint shows it."""

    identity_id: str
    name: str
    role: str
    hospitals: list[str]
    departments: list[str]


class SessionOut(BaseModel):
    """The caller's sign-in state (GET, POST /v1/session)."""

    signed_in: bool
    sign_in_required: bool
    mode: Literal["embedded", "production"]
    identity: SessionIdentity | None
    csrf_token: str | None
    expires_at: datetime | None
    timezone: str
