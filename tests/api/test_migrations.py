"""Schema migrations, on the real PostgreSQL and on the SQLite file alike.

Upgrade from empty and from the first revision with rows in every table, downgrade and
upgrade again, adoption of databases made before migrations (rebuilt here the way the
old start-up made them), the models and the migrated schema agreeing (autogenerate),
the start-up rule (embedded upgrades, production refuses a database behind the code,
both refuse one ahead of it), and two upgrades of one database at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, MetaData, Table, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.storage import schema
from services.storage.engine import insert_ignoring, make_engine
from services.storage.exceptions import (
    SchemaAhead,
    SchemaBehind,
    SchemaError,
    SchemaUnrecognised,
)
from services.storage.models import Base, ReferenceVersion
from tests.api.helpers import HOSPITAL, OPERATOR_KEY, admitted, charge
from tests.conftest import _new_database

T = TypeVar("T")
HEAD = schema.head()
PREVIOUS = schema.revisions()[-2]
FIRST = schema.FIRST
NOW = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
# every table of the first revision, and its columns then (case_seq came in 0002)
# tables made by migrations after the last release before migrations (create_all's era)
TABLES_ADDED_SINCE_MIGRATIONS = {
    "departments",
    "department_targets",
    "sign_in_sessions",
    "target_watches",
    "rule_versions",
    "rule_heads",
    "rule_switches",
    "rule_generation",
    "ingest_seal",
    "chargemasters",
    "chargemaster_items",
    "case_snapshots",
}
TABLES_ADDED_SINCE_FIRST = {"case_sequences"} | TABLES_ADDED_SINCE_MIGRATIONS
# (table, index) made by migrations since
INDEXES_ADDED_SINCE_MIGRATIONS = {
    ("cases", "ix_cases_discharged"),
    ("rule_switches", "ix_rule_switches_key"),
    ("dead_letters", "uq_dead_letters_source_key"),
    ("ingest_ledger", "ix_ledger_unnumbered"),
}
FIRST_TABLES = [
    table for table in Base.metadata.sorted_tables if table.name not in TABLES_ADDED_SINCE_FIRST
]


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _database(backend: str, path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{path}"
    else:
        yield from _new_database()  # a new PostgreSQL database, dropped afterwards


@pytest.fixture
def url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend."""
    yield from _database(backend, tmp_path / "drgwatch.db")


@pytest.fixture
def other_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database of the backend, to compare with."""
    yield from _database(backend, tmp_path / "other.db")


async def on(url: str, work: Callable[[Connection], T]) -> T:
    """Run `work` in one committed transaction on the database."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def differences(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match the models."""
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def shape(connection: Connection) -> dict[str, Any]:
    """Tables as reflected: columns, keys, indexes, unique constraints (no versions)."""
    inspector = inspect(connection)
    found: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        found[table] = {
            "columns": {
                column["name"]: (str(column["type"]), column["nullable"], column["default"])
                for column in inspector.get_columns(table)
            },
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    tuple(key["constrained_columns"]),
                    key["referred_table"],
                    tuple(key["referred_columns"]),
                    key["options"].get("ondelete"),
                )
                for key in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (str(unique["name"]), tuple(unique["column_names"]))
                for unique in inspector.get_unique_constraints(table)
            ),
        }
    return found


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def ledger_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("ingest_ledger")}


# columns the models have that the last release before migrations did not
ADDED_SINCE_MIGRATIONS = (
    {
        ("drg_catalogues", column)
        for column in (
            "sample",
            "import_mode",
            "based_on_id",
            "created_by",
            "withdrawn_at",
            "withdrawn_by",
            "withdrawn_reason",
        )
    }
    | {
        (table, column)
        for table, columns in {
            "cases": (
                "projected_total",
                "projected_ratio",
                "cost_by_day",
                "cost_by_orderer",
                "admitted_day",
                "discharged_day",
            ),
            "alerts": (
                "kind",
                "projected_total",
                "projected_ratio",
                "target_period",
                "target_measure",
                "rule_id",
                "rule_version",
                "rule_period",
                "detail",
                "text_zh",
                "text_en",
            ),
            "webhook_subscriptions": ("kinds",),
        }.items()
        for column in columns
    }
    | {("identities", "password_hash")}
    | {("dead_letters", "source_key")}
    | {("drg_groups", column) for column in ("name_en", "mean_cost", "high_ratio", "low_ratio")}
)
# and those the first revision did not have either
ADDED_SINCE_FIRST = {("ingest_ledger", "case_seq")} | ADDED_SINCE_MIGRATIONS


def first_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if (table.name, c.name) not in ADDED_SINCE_FIRST]


def first_table(name: str) -> Table:
    """A table as the first revision had it (the models' column types, no later column)."""
    table = Base.metadata.tables[name]
    return Table(name, MetaData(), *(column._copy() for column in first_columns(table)))


def dump(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the first revision, in its columns then."""
    return {
        table.name: [
            tuple(row)
            for row in connection.execute(
                select(*first_columns(table)).order_by(*table.primary_key.columns)
            )
        ]
        for table in FIRST_TABLES
    }


def case_numbers(connection: Connection) -> list[tuple[str, int | None]]:
    rows = connection.execute(text("SELECT event_id, case_seq FROM ingest_ledger ORDER BY seq"))
    return [(row.event_id, row.case_seq) for row in rows]


def fill_first_release(connection: Connection) -> None:
    """Rows in every table of the first revision, written the way the services write
    them (through the models' column types), none of them in a column added since."""
    connection.execute(
        insert(first_table("ingest_ledger")),
        [
            {
                "hospital_id": HOSPITAL,
                "event_id": event_id,
                "case_id": "C1",
                "event_type": kind,
                "payload": f'{{"event_id": "{event_id}"}}',
                "payload_hash": f"hash-{event_id}",
                "received_at": NOW,
                "published": published,
            }
            for event_id, kind, published in [("e1", "admitted", True), ("e2", "charge", False)]
        ],
    )
    connection.execute(
        insert(first_table("dead_letters")),
        {
            "stage": "ingest",
            "hospital_id": HOSPITAL,
            "case_id": None,
            "event_id": "bad-1",
            "reason": "amount: not quantity x unit_price",
            "errors": [{"field": "amount", "reason": "not quantity x unit_price"}],
            "payload": "{}",
            "received_at": NOW,
        },
    )
    connection.execute(
        insert(first_table("cases")),
        {
            "hospital_id": HOSPITAL,
            "case_id": "C1",
            "status": "open",
            "department": "CARD",
            "drg_code": "FM15",
            "drg_name": "Coronary stent",
            "insurance_scheme": "employee",
            "standard_cost": Decimal("40400.83"),
            "total_cost": Decimal("38000.10"),
            "ratio": Decimal("0.9406"),
            "level": "blue",
            "ratio_flag": None,
            "cost_by_category": {"consumable": "38000.00", "lab": "0.10"},
            "top_contributors": [{"item_code": "C-STENT", "amount": "38000.00"}],
            "admitted_at": NOW,
            "discharged_at": None,
            "utc_offset_minutes": 480,
            "avg_los_days": Decimal("7.5"),
            "events_applied": 2,
            "last_event_at": NOW,
            "updated_at": NOW,
        },
    )
    alert = {
        "alert_id": "00000000-0000-0000-0000-00000000a1e7",
        "hospital_id": HOSPITAL,
        "case_id": "C1",
        "department": "CARD",
        "drg_code": "FM15",
        "level": "blue",
        "previous_level": "none",
        "transition": "escalated",
        "total_cost": Decimal("38000.10"),
        "standard_cost": Decimal("40400.83"),
        "ratio": Decimal("0.9406"),
        "event_id": "e2",
        "occurred_at": NOW,
        "raised_at": NOW,
        "top_contributors": [{"item_code": "C-STENT", "amount": "38000.00"}],
    }
    alert_seq = connection.execute(
        insert(first_table("alerts")).returning(first_table("alerts").c.seq), alert
    )
    alert_seq_value = alert_seq.scalar_one()
    connection.execute(
        insert(first_table("alert_actions")),
        {
            "alert_id": alert["alert_id"],
            "step": 1,
            "hospital_id": HOSPITAL,
            "case_id": "C1",
            "action": "acknowledge",
            "reason": None,
            "decision": None,
            "note": "reviewing the stent order",
            "from_status": "open",
            "to_status": "acknowledged",
            "actor_id": "id-head",
            "actor_name": "Dr Li",
            "actor_role": "department_head",
            "acted_at": NOW,
        },
    )
    catalogue_id = connection.execute(
        insert(first_table("drg_catalogues")).returning(first_table("drg_catalogues").c.id),
        {
            "name": "CHS-DRG sample",
            "effective_from": date(2026, 1, 1),
            "hospital_id": None,
            "base_rates": {"employee": "12252.70"},
            "created_at": NOW,
        },
    ).scalar_one()
    connection.execute(
        insert(first_table("drg_groups")),
        {
            "catalogue_id": catalogue_id,
            "drg_code": "FM15",
            "name": "Coronary stent",
            "weight": Decimal("3.2973"),
            "avg_los_days": Decimal("7.5"),
            "standard_cost": None,
        },
    )
    connection.execute(
        insert(first_table("alert_thresholds")),
        {
            "hospital_id": HOSPITAL,
            "drg_code": "*",
            "blue": Decimal("0.9000"),
            "yellow": Decimal("0.9500"),
            "red": Decimal("1.0000"),
            "updated_at": NOW,
        },
    )
    connection.execute(text("UPDATE reference_version SET version = 3 WHERE id = 1"))
    connection.execute(
        insert(first_table("worker_heartbeats")),
        {"worker_id": "host:1", "ready": True, "partitions": 8, "updated_at": NOW},
    )
    connection.execute(
        insert(first_table("identities")),
        {
            "id": "id-head",
            "name": "Dr Li, cardiology",
            "role": "department_head",
            "hospitals": [HOSPITAL],
            "departments": ["CARD"],
            "created_at": NOW,
            "disabled_at": None,
        },
    )
    connection.execute(
        insert(first_table("api_keys")),
        {
            "id": "key-1",
            "identity_id": "id-head",
            "key_digest": "d" * 64,
            "created_at": NOW,
            "revoked_at": None,
        },
    )
    connection.execute(
        insert(first_table("webhook_subscriptions")),
        {
            "id": "sub-1",
            "identity_id": "id-head",
            "url": "https://hooks.example.org/drgwatch",
            "secret": "whsec_" + "A" * 32,
            "format": "standard",
            "hospitals": [HOSPITAL],
            "departments": ["CARD"],
            "min_level": "blue",
            "blue_digest": True,
            "enabled": True,
            "disabled_reason": None,
            "disabled_at": None,
            "consecutive_failures": 0,
            "after_seq": alert_seq_value,
            "digest_due_at": NOW,
            "created_at": NOW,
            "updated_at": NOW,
        },
    )
    delivery_seq = connection.execute(
        insert(first_table("webhook_deliveries")).returning(
            first_table("webhook_deliveries").c.seq
        ),
        {
            "id": "msg_sub-1_a1e7",
            "subscription_id": "sub-1",
            "kind": "alert",
            "alert_id": alert["alert_id"],
            "payload": '{"type": "alert"}',
            "status": "failed",
            "attempts": 1,
            "next_attempt_at": NOW,
            "lease_until": None,
            "last_status_code": 500,
            "last_error": None,
            "created_at": NOW,
            "delivered_at": None,
        },
    ).scalar_one()
    connection.execute(
        insert(first_table("webhook_attempts")),
        {
            "delivery_seq": delivery_seq,
            "attempted_at": NOW,
            "status_code": 500,
            "error": None,
            "duration_ms": 42,
        },
    )
    connection.execute(
        insert(first_table("webhook_digest_entries")),
        {"subscription_id": "sub-1", "alert_seq": alert_seq_value},
    )


def old_start_up(connection: Connection) -> None:
    """What every start did before migrations (create_schema): create_all, which makes
    missing tables only, ADDED_COLUMNS' ALTER TABLE for the ledger's case_seq, which
    never added its unique constraint, and the reference_version row. The models have
    gained columns and indexes since; a table this makes has them dropped again."""
    then = [t for t in Base.metadata.sorted_tables if t.name not in TABLES_ADDED_SINCE_MIGRATIONS]
    made = {t.name for t in then} - set(inspect(connection).get_table_names())
    Base.metadata.create_all(connection, tables=then)
    # indexes first: SQLite drops no column an index names
    for table, index in sorted(INDEXES_ADDED_SINCE_MIGRATIONS):
        if table in made:
            connection.execute(text(f"DROP INDEX {index}"))
    for table, column in sorted(ADDED_SINCE_MIGRATIONS):
        if table in made:
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    if "case_seq" not in ledger_columns(connection):
        connection.execute(text("ALTER TABLE ingest_ledger ADD COLUMN case_seq BIGINT"))
    statement = insert_ignoring(connection.dialect.name, ReferenceVersion).values(id=1, version=0)
    connection.execute(statement)


def forget_revision(connection: Connection) -> None:
    connection.execute(text("DROP TABLE alembic_version"))


async def test_upgrade_from_empty_makes_what_the_models_describe(url: str, other_url: str) -> None:
    built_by_create_all = other_url
    change = await schema.upgrade(url)
    assert (change.before, change.after, change.adopted) == (None, HEAD, None)
    assert await on(url, differences) == []
    await on(built_by_create_all, Base.metadata.create_all)
    assert await on(url, shape) == await on(built_by_create_all, shape)
    assert await on(
        url, lambda c: c.execute(text("SELECT id, version FROM reference_version")).all()
    ) == [(1, 0)]
    status = await schema.status(url)
    assert (status.revision, status.behind, status.ahead) == (HEAD, False, False)
    again = await schema.upgrade(url)  # nothing to do
    assert (again.before, again.after) == (HEAD, HEAD)


async def test_upgrade_from_the_first_revision_keeps_every_row_and_numbers_new_events(
    url: str,
) -> None:
    await schema.upgrade(url, FIRST)
    assert "case_seq" not in await on(url, ledger_columns)
    assert "case_sequences" not in await on(url, tables)
    await on(url, fill_first_release)
    before = await on(url, dump)
    assert all(before[table.name] for table in FIRST_TABLES), "a table of 0001 has no row"

    change = await schema.upgrade(url)
    assert (change.before, change.after) == (FIRST, HEAD)
    assert await on(url, dump) == before
    assert await on(url, differences) == []

    # the new column, constraint and table at work: ingest numbers each case's events
    app = create_app(ApiSettings(database_url=url, topic_prefix="t"), connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            events = [charge("e3", "C1"), charge("e4", "C1"), admitted("e5", "C2")]
            response = await client.post("/v1/events", json={"events": events})
            assert response.status_code == 202, response.text
    assert await on(url, case_numbers) == [
        ("e1", None),  # ledgered before the numbering: no number, as before
        ("e2", None),
        ("e3", 1),
        ("e4", 2),
        ("e5", 1),
    ]
    duplicate = {
        "hospital_id": HOSPITAL,
        "event_id": "e6",
        "case_id": "C1",
        "event_type": "charge",
        "payload": "{}",
        "payload_hash": "x",
        "received_at": NOW,
        "published": False,
        "case_seq": 2,
    }
    with pytest.raises(IntegrityError, match="uq_ledger_case_seq|UNIQUE constraint failed"):
        await on(url, lambda c: c.execute(insert(Base.metadata.tables["ingest_ledger"]), duplicate))


async def test_downgrade_one_step_and_upgrade_again(url: str) -> None:
    await schema.upgrade(url, FIRST)
    await on(url, fill_first_release)
    await schema.upgrade(url)
    before = await on(url, dump)

    change = await schema.downgrade(url)  # one step back by default
    assert (change.before, change.after) == (HEAD, PREVIOUS)
    assert await on(url, dump) == before

    change = await schema.upgrade(url)
    assert (change.before, change.after) == (PREVIOUS, HEAD)
    assert await on(url, dump) == before
    assert await on(url, differences) == []

    # step by step back to 0001; one step more would drop every table: only `base` does
    while (await schema.status(url)).revision != FIRST:
        await schema.downgrade(url)
    assert "case_sequences" not in await on(url, tables)
    assert "case_seq" not in await on(url, ledger_columns)
    assert await on(url, dump) == before
    with pytest.raises(SchemaError, match="first revision"):
        await schema.downgrade(url)
    assert (await schema.status(url)).revision == FIRST
    assert await on(url, dump) == before


@pytest.mark.parametrize("restarted", [False, True], ids=["first-release", "then-old-start-up"])
async def test_a_first_release_database_is_adopted_and_upgraded(
    url: str, other_url: str, restarted: bool
) -> None:
    """The first release's tables as create_all made them; `restarted`: then started by
    the last version before migrations, which added case_seq by ALTER TABLE (BIGINT,
    even on SQLite) and case_sequences by create_all, but never uq_ledger_case_seq
    (create_all adds no constraint to an existing table)."""
    reference = other_url
    await schema.upgrade(url, FIRST)
    await on(url, forget_revision)  # as create_all made it: no alembic_version
    await on(url, fill_first_release)
    if restarted:
        await on(url, old_start_up)
        assert "case_seq" in await on(url, ledger_columns)
        assert "case_sequences" in await on(url, tables)
        await on(url, lambda c: c.execute(text("UPDATE ingest_ledger SET case_seq = seq")))
    rows = await on(url, dump)
    numbers = await on(url, case_numbers) if restarted else [("e1", None), ("e2", None)]

    status = await schema.status(url)
    assert (status.revision, status.made_before_migrations, status.behind) == (None, FIRST, True)
    change = await schema.upgrade(url)
    assert (change.adopted, change.before, change.after) == (FIRST, FIRST, HEAD)

    assert await on(url, dump) == rows
    assert await on(url, case_numbers) == numbers
    assert await on(url, differences) == []
    await schema.upgrade(reference)
    assert await on(url, shape) == await on(reference, shape)


async def test_a_failed_upgrade_changes_nothing(url: str) -> None:
    """Two events of one case with the same number (possible before the constraint
    existed) stop 0002; the adoption's stamp goes back with the rest."""
    await schema.upgrade(url, FIRST)
    await on(url, forget_revision)
    await on(url, fill_first_release)
    await on(url, old_start_up)
    await on(url, lambda c: c.execute(text("UPDATE ingest_ledger SET case_seq = 1")))
    rows = await on(url, dump)
    with pytest.raises(SchemaError, match="given twice"):
        await schema.upgrade(url)
    assert "alembic_version" not in await on(url, tables)
    assert (await schema.status(url)).made_before_migrations == FIRST
    assert await on(url, dump) == rows
    assert await on(url, case_numbers) == [("e1", 1), ("e2", 1)]


async def test_a_database_of_the_last_release_before_migrations_is_adopted_as_it_is(
    url: str,
) -> None:
    await on(url, old_start_up)  # a new database, started by the last version before
    await on(url, fill_first_release)
    rows = await on(url, dump)
    change = await schema.upgrade(url)
    assert (change.adopted, change.before, change.after) == (schema.LEDGER_NUMBERING,) * 2 + (HEAD,)
    assert await on(url, dump) == rows
    assert await on(url, differences) == []


async def test_tables_that_match_no_revision_are_refused_untouched(url: str) -> None:
    await on(url, lambda c: Base.metadata.tables["ingest_ledger"].create(c))
    with pytest.raises(SchemaUnrecognised, match="dead_letters"):
        await schema.upgrade(url)
    assert await on(url, tables) == {"ingest_ledger"}


async def test_production_refuses_to_start_on_a_database_behind_and_embedded_upgrades(
    url: str,
) -> None:
    await schema.upgrade(url, FIRST)
    production = ApiSettings(mode="production", database_url=url, api_keys=OPERATOR_KEY)
    app = create_app(production, connect_broker=False)
    with pytest.raises(SchemaBehind) as refused:
        async with app.router.lifespan_context(app):
            pass
    assert f"at revision {FIRST}" in refused.value.message
    assert f"drgwatch db upgrade --database-url '{schema.display(url)}'" in refused.value.message
    assert (await schema.status(url)).revision == FIRST  # production changed nothing

    embedded = create_app(ApiSettings(database_url=url), connect_broker=False)
    async with embedded.router.lifespan_context(embedded):
        pass
    assert (await schema.status(url)).revision == HEAD
    async with app.router.lifespan_context(app):  # production starts on the head
        pass


@pytest.mark.parametrize("mode", ["embedded", "production"])
async def test_a_database_ahead_of_the_code_is_refused_in_either_mode(url: str, mode: str) -> None:
    await schema.upgrade(url)
    newer = "0099_from_a_newer_drgwatch"
    await on(url, lambda c: c.execute(text(f"UPDATE alembic_version SET version_num = '{newer}'")))
    settings = ApiSettings(mode=mode, database_url=url, api_keys=OPERATOR_KEY)  # type: ignore[arg-type]
    app = create_app(settings, connect_broker=False)
    with pytest.raises(SchemaAhead, match=f"{newer}, which this drgwatch does not know"):
        async with app.router.lifespan_context(app):
            pass
    with pytest.raises(SchemaAhead):
        await schema.upgrade(url)
    assert (await schema.status(url)).ahead


async def test_two_upgrades_of_one_database_at_once_both_succeed(url: str, backend: str) -> None:
    """Both wait on the lock that another holder has; released, one upgrades and the
    other finds the work done (without the lock, one would fail on existing tables)."""
    if backend == "postgresql":
        holder: Any = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        await holder.execute("SELECT pg_advisory_lock($1)", schema.LOCK_KEY)
    else:
        path = make_url(url).database
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("BEGIN EXCLUSIVE")
    upgrades = [asyncio.create_task(schema.upgrade(url)) for _ in range(2)]
    if backend == "postgresql":
        waiting = 0
        for _ in range(200):
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())"
            )
            if waiting == 2:
                break
            await asyncio.sleep(0.05)
        assert waiting == 2, "both upgrades should be waiting on the schema lock"
        await holder.execute("SELECT pg_advisory_unlock($1)", schema.LOCK_KEY)
        await holder.close()
    else:
        await asyncio.sleep(1.0)
        assert not any(upgrade.done() for upgrade in upgrades)
        holder.execute("COMMIT")
        holder.close()
    changes = await asyncio.gather(*upgrades)
    assert sorted((str(c.before), c.after) for c in changes) == [(HEAD, HEAD), ("None", HEAD)]
    assert await on(url, differences) == []
