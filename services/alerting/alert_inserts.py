"""Writing alerts into the alerts table: each alert once by id, in sequence order.

Three writers insert alerts: the projector (the cases' level and rule alerts), the target
watch and the rule watch (department alerts). Each inserts with insert-ignore, so an alert
whose id is stored already (a replay, a repeated pass, another worker's insert) is left as
it is. On PostgreSQL each first takes the alert lock, a transaction-scoped advisory lock
held until its commit: writers take turns, so alerts commit in `seq` order and a reader
that follows `seq` (the live stream, the webhook fan-out) never passes a `seq` whose row
commits later. SQLite has one writer at a time and takes no lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.storage.engine import insert_ignoring
from services.storage.models import AlertRecord

ALERT_LOCK = {"key": 0x647277_616C72}  # "drw" "alr": one lock for alert inserts


async def hold_alert_lock(db_session: AsyncSession) -> bool:
    """Take the alert lock until the transaction ends; False where the database has none
    (SQLite)."""
    connection = await db_session.connection()
    if connection.dialect.name != "postgresql":
        return False
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), ALERT_LOCK)
    return True


async def insert_alerts(db_session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> int:
    """Insert the alert rows whose ids are not stored yet, in the order given; returns the
    rows the database reports inserted (0 where it cannot tell)."""
    connection = await db_session.connection()
    inserted = await connection.execute(
        insert_ignoring(connection.dialect.name, AlertRecord), list(rows)
    )
    return max(inserted.rowcount, 0)
