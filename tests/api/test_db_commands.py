"""`drgwatch db upgrade|current|downgrade|init` and the start-up refusals, run as a user
runs them (a process each): one clear line on stderr and an exit status, never a
traceback, and nothing created where nothing was asked for."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.storage import schema
from tests.api.helpers import OPERATOR_KEY
from tests.conftest import _new_database

HEAD = schema.head()
PREVIOUS = schema.revisions()[-2]
FIRST = schema.FIRST


def drgwatch(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DRGWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """The options naming a new database: --data-dir (embedded file) or --database-url."""
    if request.param == "sqlite":
        yield ["--data-dir", str(tmp_path / "var")]
    else:
        for url in _new_database():
            yield ["--database-url", url]


def test_current_on_a_data_dir_without_a_database_says_so_and_creates_nothing(
    tmp_path: Path,
) -> None:
    for action in ("current", "downgrade"):
        result = drgwatch("db", action, "--data-dir", "./nowhere", cwd=tmp_path)
        assert result.returncode == 2
        assert "there is no database at" in one_line(result)
        assert "drgwatch db upgrade" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_upgrade_current_downgrade_and_init(tmp_path: Path, where: list[str]) -> None:
    result = drgwatch("db", "current", *where, cwd=tmp_path)
    if where[0] == "--database-url":  # an empty PostgreSQL database
        assert result.returncode == 0, result.stderr
        assert "none (no drgwatch tables)" in result.stdout and "behind" in result.stdout

    result = drgwatch("db", "upgrade", FIRST, *where, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"from an empty database to {FIRST}" in result.stdout
    result = drgwatch("db", "current", *where, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"revision   {FIRST}" in result.stdout and f"code head  {HEAD}" in result.stdout
    assert f"behind: `drgwatch db upgrade {where[0]}" in result.stdout

    result = drgwatch("db", "upgrade", *where, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"from {FIRST} to {HEAD}" in result.stdout
    result = drgwatch("db", "current", *where, cwd=tmp_path)
    assert f"revision   {HEAD}" in result.stdout and "up to date" in result.stdout

    result = drgwatch("db", "downgrade", *where, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"from {HEAD} to {PREVIOUS}" in result.stdout
    result = drgwatch("db", "downgrade", FIRST, *where, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"from {PREVIOUS} to {FIRST}" in result.stdout
    result = drgwatch("db", "downgrade", *where, cwd=tmp_path)  # would drop every table
    assert result.returncode == 1
    assert "first revision" in one_line(result)

    result = drgwatch("db", "upgrade", "0099_no_such_revision", *where, cwd=tmp_path)
    assert result.returncode == 2
    assert "0099_no_such_revision" in one_line(result)

    result = drgwatch("db", "init", "--sample", *where, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"from {FIRST} to {HEAD}" in result.stdout and "database ready" in result.stdout
    if where[0] == "--data-dir":
        with sqlite3.connect(Path(where[1]) / "drgwatch.db") as connection:
            assert connection.execute("SELECT count(*) FROM drg_catalogues").fetchone() == (1,)


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+asyncpg://drgwatch:secret@127.0.0.1:{port}/drgwatch"
    for action in ("current", "upgrade"):
        result = drgwatch("db", action, "--database-url", url, cwd=tmp_path)
        assert result.returncode == 1
        line = one_line(result)
        assert line.startswith(f"drgwatch db {action}: cannot reach the database")
        assert "secret" not in line and "***" in line


@pytest.mark.parametrize("process", [["api", "--port", "0"], ["worker"]])
def test_production_api_and_worker_refuse_a_database_behind_in_one_line(
    tmp_path: Path, process: list[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}"
    asyncio.run(schema.upgrade(url, FIRST))
    result = drgwatch(
        *process,
        cwd=tmp_path,
        DRGWATCH_MODE="production",
        DRGWATCH_DATABASE_URL=url,
        DRGWATCH_API_KEYS=OPERATOR_KEY,
    )
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(f"drgwatch {process[0]}: the database {url} is at revision {FIRST}")
    assert f"drgwatch db upgrade --database-url '{url}'" in line
    assert asyncio.run(schema.status(url)).revision == FIRST
