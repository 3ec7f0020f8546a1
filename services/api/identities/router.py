"""Identities, their API keys and passwords, for admins: what `drgwatch users` calls.

A key is in the answer that creates it, once; only its digest is stored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from services.access import service as access_service
from services.access.principal import Principal
from services.access.schemas import IdentityIn, IdentityList, IdentityOut, KeyIssued, PasswordIn
from services.api.deps import SessionDep, require
from services.api.openapi import ErrorBody

router = APIRouter(tags=["identities"])
Admin = Annotated[Principal, Depends(require("identities:manage"))]
IdentityId = Annotated[str, Path(max_length=40, pattern=r"^idn_[0-9a-f]{1,36}$")]


@router.post(
    "/v1/identities",
    status_code=201,
    response_model=KeyIssued,
    responses={409: {"model": ErrorBody, "description": "an identity of that name exists"}},
)
async def create_identity(
    identity_in: IdentityIn, _admin: Admin, db_session: SessionDep
) -> KeyIssued:
    """A new identity with its first API key (shown this once); with a `password` (12
    characters or more), a person who can also sign in."""
    identity, key = await access_service.create_identity(
        db_session=db_session,
        name=identity_in.name,
        role=identity_in.role,
        hospitals=identity_in.hospitals,
        departments=identity_in.departments,
        password=identity_in.password,
    )
    await db_session.commit()
    return KeyIssued(identity=access_service.identity_out(identity, 1), api_key=key)


@router.get("/v1/identities", response_model=IdentityList)
async def list_identities(_admin: Admin, db_session: SessionDep) -> IdentityList:
    """Every identity by name, with its role, scope and number of live keys."""
    rows = await access_service.list_identities(db_session=db_session)
    items = [access_service.identity_out(identity, keys) for identity, keys in rows]
    return IdentityList(items=items, next_cursor=None)


@router.post(
    "/v1/identities/{identity_id}/keys",
    status_code=201,
    response_model=KeyIssued,
    responses={409: {"model": ErrorBody, "description": "the identity is disabled"}},
)
async def issue_key(identity_id: IdentityId, _admin: Admin, db_session: SessionDep) -> KeyIssued:
    """Another API key for an identity (rotation: switch clients, then disable the old
    identity or keep both); shown this once."""
    identity, key = await access_service.another_key(db_session=db_session, name_or_id=identity_id)
    keys = await access_service.live_keys(db_session=db_session, identity_id=identity.id)
    await db_session.commit()
    return KeyIssued(identity=access_service.identity_out(identity, keys), api_key=key)


@router.put(
    "/v1/identities/{identity_id}/password",
    response_model=IdentityOut,
    responses={409: {"model": ErrorBody, "description": "the identity is disabled"}},
)
async def set_password(
    identity_id: IdentityId, password_in: PasswordIn, _admin: Admin, db_session: SessionDep
) -> IdentityOut:
    """Set or change an identity's sign-in password (12 characters or more); every
    session it has open ends."""
    identity = await access_service.set_password(
        db_session=db_session, name_or_id=identity_id, password=password_in.password
    )
    keys = await access_service.live_keys(db_session=db_session, identity_id=identity.id)
    await db_session.commit()
    return access_service.identity_out(identity, keys)


@router.post("/v1/identities/{identity_id}/disable", response_model=IdentityOut)
async def disable_identity(
    identity_id: IdentityId, _admin: Admin, db_session: SessionDep
) -> IdentityOut:
    """Disable an identity and revoke every key of it (in effect within 10 seconds); its
    sign-in sessions end at once."""
    identity = await access_service.disable(db_session=db_session, name_or_id=identity_id)
    await db_session.commit()
    return access_service.identity_out(identity, 0)
