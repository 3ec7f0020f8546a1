"""Identities and their API keys: created by `drgwatch users`, looked up per request.

A key is `dwk_` + 43 random URL-safe characters (256 bits); only its SHA-256 digest is
stored, so a database dump does not hand out keys. A plain digest (not a slow password
hash) is right for a random key of this length, and keeps the lookup cheap. A person's
password is the opposite case, chosen by a human: it gets a slow Argon2id hash
(services/access/passwords.py); sessions opened with it are services/access/sessions.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.access import passwords
from services.access.exceptions import (
    IdentityDisabled,
    IdentityExists,
    InvalidIdentity,
    UnknownIdentity,
)
from services.access.principal import ALL_HOSPITALS, ROLES, Principal, Role
from services.access.schemas import IdentityOut
from services.storage.models import ApiKeyRecord, Identity, SignInSession

KEY_PREFIX = "dwk_"
IDENTITY_ID = re.compile(r"^idn_[0-9a-f]+$")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def principal_of(identity: Identity) -> Principal:
    return Principal(
        identity_id=identity.id,
        name=identity.name,
        role=cast(Role, identity.role),
        hospitals=frozenset(identity.hospitals),
        departments=frozenset(identity.departments),
    )


def _checked_scope(
    role: str, hospitals: list[str], departments: list[str]
) -> tuple[list[str], list[str]]:
    if role not in ROLES:
        raise InvalidIdentity(f"role: one of {', '.join(ROLES)}")
    hospitals = sorted({h.strip() for h in hospitals if h.strip()})
    departments = sorted({d.strip() for d in departments if d.strip()})
    if role == "admin":
        return [ALL_HOSPITALS], []
    if not hospitals:
        raise InvalidIdentity("hospitals: at least one hospital id, or '*' for every hospital")
    if role == "department_head":
        if not departments:
            raise InvalidIdentity("departments: a department head needs at least one department")
        if ALL_HOSPITALS in hospitals:
            raise InvalidIdentity("hospitals: a department head belongs to named hospitals")
    elif departments:
        raise InvalidIdentity(f"departments: only department heads have departments, not {role}")
    if role == "hospital_system" and ALL_HOSPITALS in hospitals:
        raise InvalidIdentity("hospitals: a hospital system posts for named hospitals only")
    return hospitals, departments


async def create_identity(
    *,
    db_session: AsyncSession,
    name: str,
    role: str,
    hospitals: list[str],
    departments: list[str],
    password: str | None = None,
) -> tuple[Identity, str]:
    """A new identity and its first API key (the key is shown once, never stored); with a
    `password`, a person who can also sign in (only its Argon2id hash is kept)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidIdentity("name: 1 to 200 characters")
    if IDENTITY_ID.match(name):
        # commands find identities by name or id: a name may not pass for an id
        raise InvalidIdentity("name: may not look like an identity id (idn_...)")
    hospitals, departments = _checked_scope(role, hospitals, departments)
    if await db_session.scalar(select(Identity.id).where(Identity.name == name)) is not None:
        raise IdentityExists(f"an identity named {name!r} exists")
    password_hash = None
    if password is not None:
        password_hash = await asyncio.to_thread(passwords.hashed, password)
    identity = Identity(
        id="idn_" + secrets.token_hex(8),
        name=name,
        role=role,
        hospitals=hospitals,
        departments=departments,
        created_at=datetime.now(UTC),
        disabled_at=None,
        password_hash=password_hash,
    )
    db_session.add(identity)
    await db_session.flush()
    key = await issue_key(db_session=db_session, identity_id=identity.id)
    return identity, key


async def issue_key(*, db_session: AsyncSession, identity_id: str) -> str:
    """Another API key for an identity (e.g. for rotation: issue, switch, revoke the old)."""
    key = new_key()
    db_session.add(
        ApiKeyRecord(
            id="key_" + secrets.token_hex(8),
            identity_id=identity_id,
            key_digest=key_digest(key),
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
    )
    await db_session.flush()
    return key


async def another_key(*, db_session: AsyncSession, name_or_id: str) -> tuple[Identity, str]:
    """Another key for an enabled identity (a disabled one's keys would all be refused)."""
    identity = await find(db_session=db_session, name_or_id=name_or_id)
    if identity.disabled_at is not None:
        raise IdentityDisabled(f"{identity.name!r} is disabled; create a new identity instead")
    return identity, await issue_key(db_session=db_session, identity_id=identity.id)


async def live_keys(*, db_session: AsyncSession, identity_id: str) -> int:
    count = await db_session.scalar(
        select(func.count())
        .select_from(ApiKeyRecord)
        .where(ApiKeyRecord.identity_id == identity_id, ApiKeyRecord.revoked_at.is_(None))
    )
    return int(count or 0)


async def find(*, db_session: AsyncSession, name_or_id: str) -> Identity:
    identity = await db_session.scalar(
        select(Identity).where((Identity.id == name_or_id) | (Identity.name == name_or_id))
    )
    if identity is None:
        raise UnknownIdentity(f"no identity named {name_or_id!r}")
    return identity


async def list_identities(*, db_session: AsyncSession) -> list[tuple[Identity, int]]:
    """Every identity with its number of live keys."""
    identities = (await db_session.scalars(select(Identity).order_by(Identity.name))).all()
    live = (
        await db_session.execute(
            select(ApiKeyRecord.identity_id).where(ApiKeyRecord.revoked_at.is_(None))
        )
    ).scalars()
    counts: dict[str, int] = {}
    for identity_id in live:
        counts[identity_id] = counts.get(identity_id, 0) + 1
    return [(identity, counts.get(identity.id, 0)) for identity in identities]


async def disable(*, db_session: AsyncSession, name_or_id: str) -> Identity:
    """Disable an identity, revoke all its keys and end all its sign-in sessions."""
    identity = await find(db_session=db_session, name_or_id=name_or_id)
    now = datetime.now(UTC)
    identity.disabled_at = identity.disabled_at or now
    await db_session.execute(
        update(ApiKeyRecord)
        .where(ApiKeyRecord.identity_id == identity.id, ApiKeyRecord.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await end_sessions_of(db_session=db_session, identity_id=identity.id, now=now)
    return identity


async def set_password(*, db_session: AsyncSession, name_or_id: str, password: str) -> Identity:
    """Set or change an identity's password; every session it has open ends (whoever
    knew the old password is signed out)."""
    identity = await find(db_session=db_session, name_or_id=name_or_id)
    if identity.disabled_at is not None:
        raise IdentityDisabled(f"{identity.name!r} is disabled; create a new identity instead")
    identity.password_hash = await asyncio.to_thread(passwords.hashed, password)
    await end_sessions_of(db_session=db_session, identity_id=identity.id, now=datetime.now(UTC))
    return identity


async def end_sessions_of(*, db_session: AsyncSession, identity_id: str, now: datetime) -> None:
    """Revoke every live sign-in session of an identity."""
    await db_session.execute(
        update(SignInSession)
        .where(SignInSession.identity_id == identity_id, SignInSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def principal_for_key(*, db_session: AsyncSession, key: str) -> Principal | None:
    """The caller a key belongs to, or None (unknown, revoked or disabled)."""
    identity = await db_session.scalar(
        select(Identity)
        .join(ApiKeyRecord, ApiKeyRecord.identity_id == Identity.id)
        .where(
            ApiKeyRecord.key_digest == key_digest(key),
            ApiKeyRecord.revoked_at.is_(None),
            Identity.disabled_at.is_(None),
        )
    )
    return None if identity is None else principal_of(identity)


def identity_out(identity: Identity, live_keys: int) -> IdentityOut:
    return IdentityOut(
        id=identity.id,
        name=identity.name,
        role=identity.role,
        hospitals=list(identity.hospitals),
        departments=list(identity.departments),
        created_at=identity.created_at,
        disabled_at=identity.disabled_at,
        live_keys=live_keys,
        password_set=identity.password_hash is not None,
    )
