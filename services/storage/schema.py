"""The database schema's revision: upgrade, downgrade, status, and the rule at start.

The schema is a chain of Alembic revisions in migrations/versions/, configured here
(there is no alembic.ini). Every change runs in one transaction under a lock, so that
an API and a worker starting together on one database change it once, and a failed
upgrade leaves the database as it was:

- PostgreSQL: DDL is transactional; an advisory lock held until the commit serialises
  the processes, and the second one finds the work done.
- SQLite: BEGIN EXCLUSIVE, so a second process waits for the first to commit. Foreign
  keys are off while tables are rebuilt (a rebuild must cascade nothing) and checked
  before the commit.

A database made before migrations existed (drgwatch's tables, no alembic_version) is
adopted: the revision its tables match is recorded (stamped), then it is upgraded.

At start (`prepare`): the embedded mode upgrades to the head; production only checks,
and refuses a database behind the code (upgrading is a deploy step, `drgwatch db
upgrade`); both refuse a database ahead of the code (a newer drgwatch migrated it).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, event, inspect, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from services.storage.engine import sqlite_pragmas
from services.storage.exceptions import (
    MissingDatabase,
    SchemaAhead,
    SchemaBehind,
    SchemaError,
    SchemaUnrecognised,
)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
FIRST = "0001_initial"
LEDGER_NUMBERING = "0002_ledger_case_seq"
# pg_advisory_xact_lock key of every schema change ("drgwatch" as a 64-bit integer)
LOCK_KEY = int.from_bytes(b"drgwatch", "big")
# how long a second process waits for another's schema change on SQLite
_MIGRATION_BUSY_MS = 600_000
# The tables of 0001_initial: every database made before migrations has them all.
_FIRST_TABLES = frozenset(
    {
        "ingest_ledger",
        "dead_letters",
        "cases",
        "alerts",
        "alert_actions",
        "drg_catalogues",
        "drg_groups",
        "alert_thresholds",
        "reference_version",
        "worker_heartbeats",
        "identities",
        "api_keys",
        "webhook_subscriptions",
        "webhook_deliveries",
        "webhook_attempts",
        "webhook_digest_entries",
    }
)

Mode = Literal["embedded", "production"]
Database = AsyncEngine | URL | str


@dataclass(frozen=True)
class Status:
    """Where a database's schema stands against the code's revisions."""

    database: str  # its URL, password hidden
    revision: str | None  # recorded in alembic_version; None: nothing recorded
    head: str  # the code's newest revision
    known: bool  # the code has the recorded revision (or nothing is recorded)
    # nothing recorded but drgwatch's tables there: the revision they match
    made_before_migrations: str | None = None

    @property
    def empty(self) -> bool:
        return self.revision is None and self.made_before_migrations is None

    @property
    def ahead(self) -> bool:
        return not self.known

    @property
    def behind(self) -> bool:
        return self.known and self.revision != self.head


@dataclass(frozen=True)
class Change:
    """What an upgrade or a downgrade did."""

    database: str
    before: str | None
    after: str | None
    adopted: str | None = None  # made before migrations: recorded at this revision first


def head() -> str:
    """The code's newest revision (an error if two revisions claim to be it)."""
    newest = _scripts().get_current_head()
    if newest is None:  # pragma: no cover - the package ships its revisions
        raise SchemaError(f"no revisions in {MIGRATIONS / 'versions'}")
    return newest


def revisions() -> list[str]:
    """Every revision of the code, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def display(database: Database) -> str:
    """The database's URL as it may be shown: the password hidden."""
    return _url(database).render_as_string(hide_password=True)


async def status(database: Database) -> Status:
    """The database's revision and the code's head; changes nothing, creates nothing."""
    url = _url(database)
    _require_database_file(url)
    engine = _engine(url, migrating=False)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_status, display(url))
    finally:
        await engine.dispose()


async def upgrade(database: Database, revision: str = "head") -> Change:
    """Bring the database to `revision`, creating it (a SQLite file) and adopting a
    database made before migrations as needed."""
    url = _url(database)
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return await _change(url, _upgrade, revision)


async def downgrade(database: Database, revision: str | None = None) -> Change:
    """Take the database back to `revision` (default: one step). From the first revision
    that would drop every table, so it takes `base` said explicitly."""
    url = _url(database)
    _require_database_file(url)
    return await _change(url, _downgrade, revision)


async def check(database: Database, *, mode: Mode) -> None:
    """Refuse, changing nothing, a database that a process in `mode` must not start on:
    one ahead of the code (either mode) or behind it (production)."""
    try:
        found = await status(database)
    except MissingDatabase:
        if mode == "embedded":
            return  # the upgrade at start creates it
        raise
    if found.ahead:
        raise SchemaAhead(_ahead(found.database, found.revision, found.head))
    if mode == "production" and found.behind:
        raise SchemaBehind(_behind(found))


async def prepare(database: Database, *, mode: Mode) -> None:
    """What a process does with the schema at start: embedded upgrades it to the head,
    production refuses to start on a database that is not at the head."""
    if mode == "embedded":
        await upgrade(database)
    else:
        await check(database, mode=mode)


# ---------------------------------------------------------------------------------------
# inside the transaction (Alembic is synchronous: these run through run_sync)


def _status(connection: Connection, shown: str) -> Status:
    revision = _recorded(connection)
    return Status(
        database=shown,
        revision=revision,
        head=head(),
        known=revision is None or revision in revisions(),
        made_before_migrations=_matching_revision(connection, shown) if revision is None else None,
    )


def _upgrade(connection: Connection, shown: str, revision: str | None) -> Change:
    before = _recorded(connection)
    adopted = None
    if before is None:
        adopted = _matching_revision(connection, shown)
        if adopted is not None:
            command.stamp(_config(connection), adopted)
            before = adopted
    _require_known(before, shown)
    if before == head() and revision in (None, "head"):
        return Change(shown, before, before, adopted)  # every start of a process: nothing to do
    command.upgrade(_config(connection), revision or "head")
    return Change(shown, before, _recorded(connection), adopted)


def _downgrade(connection: Connection, shown: str, revision: str | None) -> Change:
    before = _recorded(connection)
    if before is None:
        raise SchemaError(
            f"the database {shown} records no revision: nothing to downgrade"
            " (`drgwatch db upgrade` adopts a database made before migrations)"
        )
    _require_known(before, shown)
    if revision is None:
        if before == FIRST:
            raise SchemaError(
                f"{FIRST} is the first revision: going back from it drops every table;"
                " say `drgwatch db downgrade base` if that is what you mean"
            )
        revision = "-1"
    command.downgrade(_config(connection), revision)
    return Change(shown, before, _recorded(connection))


def _recorded(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _matching_revision(connection: Connection, shown: str) -> str | None:
    """The revision that a database made before migrations matches (None: no drgwatch
    table at all). Start-up used to run create_all, which made missing tables, and add
    ingest_ledger.case_seq with ALTER TABLE, which never added its unique constraint:
    only a database with the column, the constraint and case_sequences is at 0002;
    one with part of them is at 0001, and 0002 adds what is missing."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    if not tables & (_FIRST_TABLES | {"case_sequences"}):
        return None
    missing = sorted(_FIRST_TABLES - tables)
    if missing:
        raise SchemaUnrecognised(
            f"the database {shown} has drgwatch tables but matches no revision: it lacks"
            f" {', '.join(missing)}. It comes from a drgwatch older than the first"
            " release; nothing was changed"
        )
    columns = {column["name"] for column in inspector.get_columns("ingest_ledger")}
    constraints = {unique["name"] for unique in inspector.get_unique_constraints("ingest_ledger")}
    if "case_seq" in columns and "uq_ledger_case_seq" in constraints and "case_sequences" in tables:
        return LEDGER_NUMBERING
    return FIRST


def _require_known(revision: str | None, shown: str) -> None:
    if revision is not None and revision not in revisions():
        raise SchemaAhead(_ahead(shown, revision, head()))


def _check_foreign_keys(connection: Connection) -> None:
    """SQLite changes run with foreign keys off: nothing may dangle at the commit."""
    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if dangling:
        table, _rowid, parent, _index = dangling[0]
        raise SchemaError(
            f"the schema change left {len(dangling)} rows pointing nowhere (e.g. {table}"
            f" -> {parent}); it was rolled back"
        )


# ---------------------------------------------------------------------------------------
# engines, configuration, messages


async def _change(
    url: URL,
    change: Callable[[Connection, str, str | None], Change],
    revision: str | None,
) -> Change:
    """Run `change` in one transaction that holds the schema lock until its commit.

    The lock is taken before Alembic runs, which also keeps two changes in one process
    apart: Alembic's migration context is process-wide.
    """
    engine = _engine(url, migrating=True)
    try:
        async with engine.begin() as connection:  # SQLite: BEGIN EXCLUSIVE
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
                )
            result = await connection.run_sync(change, display(url), revision)
            if connection.dialect.name == "sqlite":
                await connection.run_sync(_check_foreign_keys)
    finally:
        await engine.dispose()
    if result.adopted:
        log.info("%s was made before migrations: recorded at %s", result.database, result.adopted)
    if result.before != result.after:
        log.info("%s: schema %s -> %s", result.database, result.before, result.after)
    return result


def _engine(url: URL, *, migrating: bool) -> AsyncEngine:
    """A one-connection engine of its own (the app's pool keeps its settings). On SQLite
    the transactions are begun here: the driver would not put DDL inside one."""
    engine = create_async_engine(url, poolclass=NullPool, hide_parameters=True)
    if url.get_backend_name() != "sqlite":
        return engine

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        sqlite_pragmas(
            dbapi_connection,
            foreign_keys=not migrating,
            busy_timeout_ms=_MIGRATION_BUSY_MS if migrating else 30_000,
        )
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN EXCLUSIVE" if migrating else "BEGIN")

    return engine


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _url(database: Database) -> URL:
    return database.url if isinstance(database, AsyncEngine) else make_url(database)


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (None: another database, or SQLite in memory)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _require_database_file(url: URL) -> None:
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        raise MissingDatabase(f"there is no database at {path} (`drgwatch db upgrade` creates one)")


def _ahead(shown: str, revision: str | None, newest: str) -> str:
    return (
        f"the database {shown} is at revision {revision}, which this drgwatch does not"
        f" know (its newest is {newest}): a newer drgwatch has upgraded it. Run that"
        f" version, or use it to go back: `drgwatch db downgrade {newest}`"
    )


def _behind(found: Status) -> str:
    if found.empty:
        where = "has no drgwatch schema yet"
    elif found.revision is None:
        where = f"was made before migrations (its tables match {found.made_before_migrations})"
    else:
        where = f"is at revision {found.revision}"
    hidden = " (with the password, hidden here)" if ":***@" in found.database else ""
    return (
        f"the database {found.database} {where}, and this drgwatch needs {found.head};"
        " production does not change the schema at start. Upgrade it first:"
        f" drgwatch db upgrade --database-url '{found.database}'{hidden}"
    )
