"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Table, event, insert, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.dml import Insert

from services.metrics import DATABASE_POOLS

SQLITE_POOL_SIZE = 20
POSTGRES_POOL_SIZE = 20
POSTGRES_MAX_OVERFLOW = 10
POOL_RECYCLE_SECONDS = 1800
PING_AFTER_IDLE_SECONDS = 5.0
_IDLE_SINCE = "drgwatch_idle_since"


def make_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so several processes share it."""
    # hide_parameters: an error message must not carry bound values (event payloads hold
    # free text) into a log
    if url.startswith("sqlite"):
        # a connection to a file costs a thread and the schema's parse on first use: enough
        # are kept open for a busy API's concurrent requests, so they are not opened and
        # closed again for each burst (an in-memory database has one, shared)
        database = make_url(url).database
        in_memory = not database or database == ":memory:" or "mode=memory" in url
        pool: dict[str, Any] = (
            {} if in_memory else {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_SIZE}
        )
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, hide_parameters=True, **pool
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            sqlite_pragmas(dbapi_connection)

        DATABASE_POOLS.watch(engine)
        return engine
    # no ping on every checkout (a round trip per request): a connection is pinged only
    # when it sat idle in the pool for PING_AFTER_IDLE_SECONDS, as when the server may have
    # restarted meanwhile; one that dies while in use fails its statement, invalidates
    # the pool's older connections, and the request path that can retries once
    # (services/api/events.py). Enough are kept open for a busy API's concurrent requests
    # that they are not opened and closed again for each burst.
    engine = create_async_engine(
        url,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_MAX_OVERFLOW,
        pool_recycle=POOL_RECYCLE_SECONDS,
        hide_parameters=True,
    )
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_after_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # the pool discards this connection and checks out another
            raise DisconnectionError("connection lost while idle") from error

    DATABASE_POOLS.watch(engine)
    return engine


def sqlite_pragmas(
    dbapi_connection: Any, *, foreign_keys: bool = True, busy_timeout_ms: int = 30_000
) -> None:
    """WAL, durable commits, a busy timeout and foreign keys, on a new SQLite connection.

    Foreign keys are off only while the schema changes (services/storage/schema.py): a
    table rebuilt there must not cascade deletes into the tables that refer to it.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")  # first: WAL may wait
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def insert_ignoring(engine: AsyncEngine | str, table: Any) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING for the engine's dialect."""
    name = engine if isinstance(engine, str) else engine.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table)


def upsert(
    engine: AsyncEngine | str,
    table: Any,
    keys: list[str],
    columns: list[str],
    *,
    increment: str | None = None,
) -> Insert:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET columns = excluded.columns.

    `increment` names a column that is added to (existing + excluded) instead. `table`
    is a mapped class or a Table.
    """
    name = engine if isinstance(engine, str) else engine.dialect.name
    statement = postgresql.insert(table) if name == "postgresql" else sqlite.insert(table)
    changes: dict[str, Any] = {column: statement.excluded[column] for column in columns}
    if increment is not None:
        current = table.c[increment] if isinstance(table, Table) else getattr(table, increment)
        changes[increment] = current + statement.excluded[increment]
    return statement.on_conflict_do_update(index_elements=keys, set_=changes)


# SQLSTATE classes that mean "the database is not there right now", not "bad request":
# 08 connection exception, 53 insufficient resources, 57 operator intervention
# (shutdown, terminated connection), 55000 database not accepting connections.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
_UNAVAILABLE_SQLSTATES = {"55000", "55006", "40P01"}


def is_unavailable(error: BaseException) -> bool:
    """True when a database error means 'down or overloaded, retry later'."""
    if isinstance(error, OSError | TimeoutError | OperationalError | InterfaceError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = getattr(error.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
        ):
            return True
        return isinstance(error.orig, OSError | TimeoutError)
    return False
