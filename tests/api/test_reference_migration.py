"""Migration 0003_reference_data on SQLite and PostgreSQL: columns added, the stored
sample marked as sample, and back again."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, inspect, text

from services.reference.service import SAMPLE_NAME
from services.storage.engine import make_engine

MIGRATION = (
    Path(__file__).parents[2] / "services/storage/migrations/versions/0003_reference_data.py"
)
EARLIER = [
    """CREATE TABLE drg_catalogues (
        id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, effective_from DATE NOT NULL,
        hospital_id VARCHAR(64), base_rates JSON NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE NOT NULL)""",
    """CREATE TABLE drg_groups (
        catalogue_id INTEGER NOT NULL REFERENCES drg_catalogues (id) ON DELETE CASCADE,
        drg_code VARCHAR(32) NOT NULL, name VARCHAR(200) NOT NULL, weight VARCHAR(48) NOT NULL,
        avg_los_days VARCHAR(48), standard_cost VARCHAR(48),
        PRIMARY KEY (catalogue_id, drg_code))""",
    f"""INSERT INTO drg_catalogues VALUES
        (1, '{SAMPLE_NAME}', '2026-01-01', NULL, '{{}}', '2026-11-01 00:00:00+00'),
        (2, 'Province 2025', '2025-01-01', NULL, '{{}}', '2026-11-02 00:00:00+00')""",
    "INSERT INTO drg_groups VALUES (1, 'FM15', 'x', '3.2973', NULL, NULL),"
    " (2, 'FM15', 'x', '3.1000', NULL, NULL)",
]
ADDED = {
    "sample",
    "import_mode",
    "based_on_id",
    "created_by",
    "withdrawn_at",
    "withdrawn_by",
    "withdrawn_reason",
}


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference_data_0003", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(connection: Connection, step: str) -> None:
    with Operations.context(MigrationContext.configure(connection)):
        getattr(_migration(), step)()


def _columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("drg_catalogues")}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'earlier.db'}"
    url: str = request.getfixturevalue("own_postgres_url")
    return url


async def test_upgrade_marks_the_sample_and_downgrade_removes_what_was_withdrawn(
    database_url: str,
) -> None:
    migration = _migration()
    assert migration.revision == "0003_reference_data"
    assert migration.down_revision == "0002_ledger_case_seq"
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            for statement in EARLIER:
                await connection.execute(text(statement))
        async with engine.begin() as connection:
            await connection.run_sync(_run, "upgrade")
        async with engine.begin() as connection:
            assert await connection.run_sync(_columns) >= ADDED
            rows = await connection.execute(
                text("SELECT id, sample FROM drg_catalogues ORDER BY id")
            )
            assert [(row[0], bool(row[1])) for row in rows] == [(1, True), (2, False)]
            await connection.execute(
                text("UPDATE drg_catalogues SET withdrawn_at = CURRENT_TIMESTAMP WHERE id = 2")
            )
        async with engine.begin() as connection:
            await connection.run_sync(_run, "downgrade")
        async with engine.connect() as connection:
            assert not ADDED & await connection.run_sync(_columns)
            ids = (await connection.execute(text("SELECT id FROM drg_catalogues"))).scalars()
            assert list(ids) == [1]
            groups = await connection.execute(text("SELECT catalogue_id FROM drg_groups"))
            assert list(groups.scalars()) == [1]
    finally:
        await engine.dispose()
