"""Identities on the wire (admins only): create, list, another key, disable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.access.principal import Role

ScopeEntry = Annotated[str, Field(min_length=1, max_length=64)]


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role
    hospitals: Annotated[list[ScopeEntry], Field(max_length=1000)] = []  # "*": every hospital
    departments: Annotated[list[ScopeEntry], Field(max_length=1000)] = []  # department heads


class IdentityOut(BaseModel):
    id: str
    name: str
    role: str
    hospitals: list[str]
    departments: list[str]
    created_at: datetime
    disabled_at: datetime | None
    live_keys: int


class IdentityList(BaseModel):
    items: list[IdentityOut]
    next_cursor: str | None


class KeyIssued(BaseModel):
    """A new API key: shown this once, only its digest is kept."""

    identity: IdentityOut
    api_key: str
