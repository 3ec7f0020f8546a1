"""Shared fixtures: a fresh PostgreSQL database per test session (the real server)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.storage import schema
from services.storage.engine import make_engine

PG_HOST = os.environ.get("DRGWATCH_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DRGWATCH_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("DRGWATCH_TEST_PG_USER", "postgres")


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _postgres_reachable() -> bool:
    try:
        asyncio.run(_admin("SELECT 1"))
        return True
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False


def _new_database() -> Iterator[str]:
    """URL of a new, empty database on the local PostgreSQL, dropped afterwards."""
    if not _postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but {PG_HOST}:{PG_PORT} does not answer")
        pytest.skip(f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT}")
    name = f"drgwatch_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database for the whole test session."""
    yield from _new_database()


@pytest.fixture
def own_postgres_url() -> Iterator[str]:
    """A database of the test's own (for tests that take it down)."""
    yield from _new_database()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures measured by the fault-injection suite, at the end of every run."""
    from tests.faults.report import FIGURES

    if FIGURES:
        terminalreporter.section("fault injection and live push: what was done and measured")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the session database, upgraded to the head, every table emptied."""
    await schema.upgrade(postgres_url)
    engine = make_engine(postgres_url)
    from sqlalchemy import text

    async with engine.begin() as connection:
        await connection.execute(
            text(
                "TRUNCATE ingest_ledger, case_sequences, dead_letters, cases, alerts,"
                " alert_actions, drg_groups, drg_catalogues, alert_thresholds, worker_heartbeats,"
                " identities, api_keys, webhook_subscriptions, webhook_deliveries,"
                " webhook_attempts, webhook_digest_entries, departments, department_targets,"
                " target_watches, sign_in_sessions, rule_versions, rule_heads, rule_switches,"
                " chargemaster_items, chargemasters, case_snapshots"
                " RESTART IDENTITY CASCADE"
            )
        )
        await connection.execute(text("UPDATE reference_version SET version = 0"))
        await connection.execute(text("UPDATE rule_generation SET generation = 0"))
    yield engine
    await engine.dispose()
