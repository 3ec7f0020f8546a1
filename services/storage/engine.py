"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event, insert, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.dml import Insert

from services.storage.models import Base, ReferenceVersion


def make_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so several processes share it."""
    # hide_parameters: an error message must not carry bound values (event payloads hold
    # free text) into a log
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# Columns added to existing tables since the first release: (table, column, SQL type).
# create_all makes missing tables only, so a database from an earlier version gets them
# here; all are nullable or defaulted, and rows from before simply have none.
ADDED_COLUMNS = [
    ("ingest_ledger", "case_seq", "BIGINT"),
    ("drg_catalogues", "sample", "BOOLEAN NOT NULL DEFAULT false"),
    ("drg_catalogues", "import_mode", "VARCHAR(16)"),
    ("drg_catalogues", "based_on_id", "BIGINT"),
    ("drg_catalogues", "created_by", "VARCHAR(200)"),
    ("drg_catalogues", "withdrawn_at", "TIMESTAMP WITH TIME ZONE"),
    ("drg_catalogues", "withdrawn_by", "VARCHAR(200)"),
    ("drg_catalogues", "withdrawn_reason", "TEXT"),
]


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables and columns, and the reference-version row (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.run_sync(_add_missing_columns)
        statement = insert_ignoring(engine, ReferenceVersion).values(id=1, version=0)
        await connection.execute(statement)


def _add_missing_columns(connection: Connection) -> None:
    inspector = inspect(connection)
    for table, column, sql_type in ADDED_COLUMNS:
        present = {existing["name"] for existing in inspector.get_columns(table)}
        if column not in present:
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))


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

    `increment` names a column that is added to (existing + excluded) instead.
    """
    name = engine if isinstance(engine, str) else engine.dialect.name
    statement = postgresql.insert(table) if name == "postgresql" else sqlite.insert(table)
    changes: dict[str, Any] = {column: statement.excluded[column] for column in columns}
    if increment is not None:
        changes[increment] = getattr(table, increment) + statement.excluded[increment]
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
