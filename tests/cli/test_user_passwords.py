"""`drgwatch users create --password` and `drgwatch users password` as a user runs them:
the password is typed (or piped) in, never an argument; only its Argon2id hash is kept,
and the person signs in with it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import httpx

from services.access import passwords
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.cli.test_data_commands import drgwatch

FIRST = "first password, long enough"
SECOND = "second password, long enough"


def stored_hash(data_dir: Path, name: str) -> str | None:
    with sqlite3.connect(data_dir / "drgwatch.db") as connection:
        row = connection.execute(
            "SELECT password_hash FROM identities WHERE name = ?", (name,)
        ).fetchone()
    return None if row is None else row[0]


async def signs_in(data_dir: Path, name: str, password: str) -> int:
    """The status a sign-in with this name and password gets from the app on `data_dir`."""
    app = create_app(ApiSettings(data_dir=data_dir, webhooks=False), connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.post("/v1/session", json={"name": name, "password": password})
            return response.status_code


async def test_create_a_person_with_a_password_and_change_it(
    tmp_path: Path, data_dir: Path
) -> None:
    where = ("--data-dir", str(data_dir))
    create = ("users", "create", "Dr Li", "--role", "insurance_office", "--hospital", "H1")
    created = await drgwatch(tmp_path, *create, "--password", *where, stdin=FIRST + "\n")
    assert created.code == 0, created.err
    assert "created idn_" in created.out and FIRST not in created.out + created.err
    first_hash = stored_hash(data_dir, "Dr Li")
    assert first_hash is not None and first_hash.startswith("$argon2id$")
    assert passwords.matches(first_hash, FIRST)
    assert await signs_in(data_dir, "Dr Li", FIRST) == 200

    listed = await drgwatch(tmp_path, "users", "list", *where)
    assert re.search(r"insurance_office +H1 +1 +yes +Dr Li", listed.out), listed.out

    changed = await drgwatch(tmp_path, "users", "password", "Dr Li", *where, stdin=SECOND + "\n")
    assert changed.code == 0, changed.err
    assert changed.out.strip() == "password set for 'Dr Li'; its sessions are ended"
    assert passwords.matches(stored_hash(data_dir, "Dr Li"), SECOND)
    assert await signs_in(data_dir, "Dr Li", FIRST) == 401
    assert await signs_in(data_dir, "Dr Li", SECOND) == 200


async def test_a_short_or_missing_password_is_refused_in_one_line(
    tmp_path: Path, data_dir: Path
) -> None:
    where = ("--data-dir", str(data_dir))
    create = ("users", "create", "Dr Wang", "--role", "admin", *where)
    short = await drgwatch(tmp_path, *create, "--password", stdin="short pass\n")
    line = short.failed_with_one_line()
    assert line == "drgwatch users create: password: at least 12 characters", line
    assert "short pass" not in short.err
    with sqlite3.connect(data_dir / "drgwatch.db") as connection:
        assert connection.execute("SELECT count(*) FROM identities").fetchone() == (0,)

    empty = await drgwatch(tmp_path, *create, "--password", stdin="")
    assert "no password: stdin is empty" in empty.failed_with_one_line()

    created = await drgwatch(tmp_path, *create, stdin="")
    assert created.code == 0, created.err
    assert stored_hash(data_dir, "Dr Wang") is None  # keys only, no password
    unchanged = await drgwatch(tmp_path, "users", "password", "Dr Wang", *where, stdin="tiny\n")
    assert unchanged.failed_with_one_line().endswith("password: at least 12 characters")
    assert stored_hash(data_dir, "Dr Wang") is None
