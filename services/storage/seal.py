"""The seal key of the events topic, as the database keeps it (table ingest_seal, row 1).

The migration that made the table put the key in it; a database whose row was deleted
gets a new one on first use, the same for every process that reads it (the first insert
wins, the others read it back).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.storage.engine import insert_ignoring
from services.storage.models import IngestSeal
from services.wire import SEAL_KEY_BYTES, EventSeal


async def seal_key(*, db_session: AsyncSession) -> bytes:
    """The key (made now if the database has none); the caller commits."""
    key = await db_session.scalar(select(IngestSeal.key).where(IngestSeal.id == 1))
    if key is None:
        await db_session.execute(
            insert_ignoring(db_session.get_bind().dialect.name, IngestSeal).values(
                id=1, key=secrets.token_bytes(SEAL_KEY_BYTES), created_at=datetime.now(UTC)
            )
        )
        # this insert's key, or that of another process that inserted first
        key = (
            await db_session.execute(select(IngestSeal.key).where(IngestSeal.id == 1))
        ).scalar_one()
    return bytes(key)


async def load_seal(sessions: async_sessionmaker[AsyncSession]) -> EventSeal:
    """The events topic's seal, with the database's key."""
    async with sessions() as db_session:
        key = await seal_key(db_session=db_session)
        await db_session.commit()
    return EventSeal(key)
