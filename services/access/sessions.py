"""People's sign-in sessions, kept server-side.

Signing in with a name and password opens a session: a random 256-bit token goes to the
browser in a cookie and only its SHA-256 digest is stored (as for API keys), with the
identity, a CSRF token, when it was created and last seen, and when it expires.

A session expires at the earlier of `last seen + idle` (sliding: each request moves it
on, at most once every `TOUCH_SECONDS` so that a busy page does not write on every
request) and `created + absolute`. Signing out revokes it; disabling an identity or
changing its password revokes all of them, and every lookup also asks whether the
identity is enabled, so a disabled person's cookie stops working at the next request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.access import passwords
from services.access.exceptions import SignInRefused
from services.access.principal import Principal
from services.access.service import principal_of
from services.storage.models import Identity, SignInSession

# the sliding expiry is written at most this often per session
TOUCH_SECONDS = 60


@dataclass(frozen=True)
class Lifetimes:
    """How long a session lives: `idle` after its last request, `absolute` in all."""

    idle: timedelta
    absolute: timedelta

    def expiry(self, *, created_at: datetime, last_seen_at: datetime) -> datetime:
        return min(last_seen_at + self.idle, created_at + self.absolute)


@dataclass(frozen=True)
class ActiveSession:
    """A live session as a request sees it."""

    session_id: str
    principal: Principal
    csrf_token: str
    expires_at: datetime


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(
    *,
    db_session: AsyncSession,
    name: str,
    password: str,
    now: datetime,
    lifetimes: Lifetimes,
) -> tuple[ActiveSession, str]:
    """A new session for the person with this name and password, and its cookie token.

    SignInRefused (its `reason`: unknown_name, no_password, disabled, wrong_password) when
    they do not match; every refusal spends the time of one password check.
    """
    name = name.strip()
    # a NUL is in no name (PostgreSQL text cannot hold one), and may not reach a query
    identity = None
    if "\x00" not in name:
        identity = await db_session.scalar(select(Identity).where(Identity.name == name))
    password_hash = identity.password_hash if identity is not None else None
    matched = await asyncio.to_thread(passwords.matches, password_hash, password)
    if identity is None:
        raise SignInRefused("unknown_name")
    if identity.password_hash is None:
        raise SignInRefused("no_password")
    if identity.disabled_at is not None:
        raise SignInRefused("disabled")
    if not matched:
        raise SignInRefused("wrong_password")
    if passwords.needs_rehash(identity.password_hash):
        identity.password_hash = await asyncio.to_thread(passwords.hashed, password)
    # sessions that have run out (anyone's) are of no more use: each sign-in clears them
    await db_session.execute(delete(SignInSession).where(SignInSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    record = SignInSession(
        id="ses_" + secrets.token_hex(8),
        token_digest=token_digest(token),
        identity_id=identity.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=lifetimes.expiry(created_at=now, last_seen_at=now),
        revoked_at=None,
    )
    db_session.add(record)
    await db_session.flush()
    active = ActiveSession(
        session_id=record.id,
        principal=principal_of(identity),
        csrf_token=record.csrf_token,
        expires_at=record.expires_at,
    )
    return active, token


async def active_session(
    *,
    db_session: AsyncSession,
    token: str,
    now: datetime,
    lifetimes: Lifetimes,
    touch: bool = True,
) -> ActiveSession | None:
    """The live session a cookie token opens, or None (unknown, expired, revoked, or its
    identity disabled); `touch` moves the idle expiry on (not for mere re-checks)."""
    row = (
        await db_session.execute(
            select(SignInSession, Identity)
            .join(Identity, Identity.id == SignInSession.identity_id)
            .where(
                SignInSession.token_digest == token_digest(token),
                SignInSession.revoked_at.is_(None),
                Identity.disabled_at.is_(None),
            )
        )
    ).first()
    if row is None:
        return None
    record, identity = row.tuple()
    if record.expires_at <= now:
        return None
    if touch and now - record.last_seen_at >= timedelta(seconds=TOUCH_SECONDS):
        record.last_seen_at = now
        record.expires_at = lifetimes.expiry(created_at=record.created_at, last_seen_at=now)
        await db_session.flush()
    return ActiveSession(
        session_id=record.id,
        principal=principal_of(identity),
        csrf_token=record.csrf_token,
        expires_at=record.expires_at,
    )


async def end(*, db_session: AsyncSession, session_id: str, now: datetime) -> None:
    """Sign out: the session is revoked and its cookie opens nothing any more."""
    await db_session.execute(
        update(SignInSession)
        .where(SignInSession.id == session_id, SignInSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
