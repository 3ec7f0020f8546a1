"""`drgwatch drg`, `thresholds` and `users` as a user runs them: `python -m services.cli`
in a subprocess, against a data directory, a database URL, or a running service
(`--url`, the real app served by uvicorn). Every wrong target is one line on stderr and a
non-zero exit, never a traceback, and nothing is created where nothing was."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.api.live import serving

OPERATOR_KEY = "operator-key-for-the-cli-tests-0123456789"
CATALOGUE_2025 = (
    "drg_code,name,weight,avg_los_days,standard_cost\n"
    "FM15,PCI with stent,3.1000,7.0,\n"
    "GB21,Bowel procedures with MCC,5.5000,23.5,\n"
    "ES23,Pleural effusion with CC,1.1000,11.5,\n"
)
FM15_REVISED = "drg_code,name,weight,avg_los_days,standard_cost\nFM15,PCI with stent,3.3000,7.0,\n"


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def failed_with_one_line(self) -> str:
        """The refusal: non-zero, one line on stderr, nothing on stdout, no traceback."""
        assert self.code != 0, self
        assert "Traceback" not in self.err and "Traceback" not in self.out, self.err
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert self.out == "", self.out
        return lines[0]


async def drgwatch(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> Ran:
    """Run the command line in a subprocess, with no DRGWATCH_* setting but those given
    (and with `stdin`, if given, as a pipe holding it: not a terminal)."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("DRGWATCH_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        *args,
        cwd=cwd,
        env={**clean, **(env or {})},
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    piped = stdin.encode() if stdin is not None else None
    out, err = await asyncio.wait_for(process.communicate(piped), 120)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def test_catalogues_through_a_data_directory(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "province-2025.csv").write_text(CATALOGUE_2025)
    (tmp_path / "fm15.csv").write_text(FM15_REVISED)
    where = ("--data-dir", str(data_dir))

    listed = await drgwatch(tmp_path, "drg", "list", *where)
    assert listed.code == 0, listed.err
    assert re.search(r"^ +1 +2026-01-01 +\* +448 +in force today, SAMPLE ", listed.out, re.M)

    silent_today = await drgwatch(tmp_path, "drg", "import", "province-2025.csv", *where)
    assert silent_today.code == 2
    assert "required: --effective-from" in silent_today.err

    implausible = await drgwatch(
        tmp_path, "drg", "import", "province-2025.csv", "--effective-from", "2025-01-01",
        "--base-rate", "employee=11000", "--base-rate", "resident=1", *where,
    )  # fmt: skip
    line = implausible.failed_with_one_line()
    assert line.startswith("drgwatch drg import: base_rates.resident: 1 is not a plausible")

    rates = ("--base-rate", "employee=11000.00", "--base-rate", "resident=9000.00")
    dry = await drgwatch(
        tmp_path, "drg", "import", "province-2025.csv", "--effective-from", "2025-01-01",
        *rates, "--dry-run", *where,
    )  # fmt: skip
    assert dry.code == 0, dry.err
    assert dry.out.startswith("dry run, nothing stored: would import catalogue 'province-2025'")
    assert "are priced by the imported catalogue 'province-2025'" in dry.out

    stored = await drgwatch(
        tmp_path, "drg", "import", "province-2025.csv", "--effective-from", "2025-01-01",
        *rates, "--name", "Province 2025", *where,
    )  # fmt: skip
    assert stored.code == 0, stored.err
    assert stored.out.startswith("imported catalogue 2 'Province 2025' from 2025-01-01")
    assert "are priced by catalogue 2 'Province 2025' (from 2025-01-01)\n" in stored.out
    assert "open cases: 0;" in stored.out

    partial = await drgwatch(
        tmp_path, "drg", "import", "fm15.csv", "--effective-from", "2026-11-01", *where
    )
    line = partial.failed_with_one_line()
    assert "lacks 2 of the 3 groups" in line and "ES23, GB21" in line
    assert "--amend" in line and "--replace" in line

    amended = await drgwatch(
        tmp_path, "drg", "import", "fm15.csv", "--effective-from", "2026-11-01", "--amend",
        *where,
    )  # fmt: skip
    assert amended.code == 0, amended.err
    assert "(amend, 3 groups: 0 added, 1 changed, 2 unchanged, 0 withdrawn)" in amended.out
    assert "supersedes catalogue 2 'Province 2025'" in amended.out

    listed = await drgwatch(tmp_path, "drg", "list", *where)
    rows = [line.split()[:4] for line in listed.out.splitlines()[1:4]]
    assert rows == [
        ["3", "2026-11-01", "*", "3"],
        ["2", "2025-01-01", "*", "3"],
        ["1", "2026-01-01", "*", "448"],
    ]
    assert "in force today" in listed.out.splitlines()[1]
    assert "SAMPLE" in listed.out.splitlines()[3]

    shown = await drgwatch(tmp_path, "drg", "show", "current", *where)
    assert shown.code == 0, shown.err
    assert shown.out.startswith("catalogue 3 'fm15'")
    assert re.search(r"^FM15 +3\.3000 +7\.0 +36300\.00 +29700\.00 +PCI", shown.out, re.M)

    withdrawn = await drgwatch(tmp_path, "drg", "withdraw", "3", "--reason", "wrong weight", *where)
    assert withdrawn.code == 0, withdrawn.err
    assert "are priced by catalogue 2 'Province 2025'" in withdrawn.out
    again = await drgwatch(tmp_path, "drg", "withdraw", "3", *where)
    assert again.failed_with_one_line().startswith("drgwatch drg withdraw: catalogue 3 was")


async def test_thresholds_and_users_through_a_database_url(
    tmp_path: Path, postgres_url: str, pg_engine: AsyncEngine
) -> None:
    where = ("--database-url", postgres_url)
    put = await drgwatch(
        tmp_path, "thresholds", "set", "--hospital-id", "H1", "--drg-code", "FM15",
        "--blue", "0.85", "--yellow", "0.9", "--red", "1.0", *where,
    )  # fmt: skip
    assert put.code == 0, put.err
    listed = await drgwatch(tmp_path, "thresholds", "list", *where)
    assert re.search(r"^H1 +FM15 +0\.8500 +0\.9000 +1\.0000 ", listed.out, re.M), listed.out
    assert "where none applies: blue 0.9000, yellow 0.9500, red 1.0000" in listed.out
    removed = await drgwatch(
        tmp_path, "thresholds", "remove", "--hospital-id", "H1", "--drg-code", "FM15", *where
    )
    assert removed.code == 0 and removed.out.startswith("removed thresholds of hospital H1")
    gone = await drgwatch(
        tmp_path, "thresholds", "remove", "--hospital-id", "H1", "--drg-code", "FM15", *where
    )
    assert "no thresholds are set" in gone.failed_with_one_line()

    created = await drgwatch(
        tmp_path, "users", "create", "HIS of H1", "--role", "hospital_system", "--hospital", "H1",
        *where,
    )  # fmt: skip
    assert created.code == 0, created.err
    assert re.search(r"API key \(shown once, keep it secret\): dwk_\S+", created.out)
    users = await drgwatch(tmp_path, "users", "list", *where)
    assert re.search(r"hospital_system +H1 +1 +no +HIS of H1", users.out), users.out
    disabled = await drgwatch(tmp_path, "users", "disable", "HIS of H1", *where)
    assert disabled.code == 0 and "its keys are revoked" in disabled.out
    no_key = await drgwatch(tmp_path, "users", "key", "HIS of H1", *where)
    assert "is disabled" in no_key.failed_with_one_line()


@pytest.fixture
async def service(postgres_url: str, pg_engine: AsyncEngine) -> AsyncIterator[str]:
    """A production-mode service on loopback: every request needs a key."""
    settings = ApiSettings(
        mode="production", database_url=postgres_url, api_keys=OPERATOR_KEY, webhooks=False
    )
    app = create_app(settings, connect_broker=False)
    async with app.router.lifespan_context(app), serving(app) as base_url:
        yield base_url


async def test_the_same_commands_against_a_running_service(tmp_path: Path, service: str) -> None:
    (tmp_path / "province-2025.csv").write_text(CATALOGUE_2025)
    operator = {"DRGWATCH_API_KEY": OPERATOR_KEY}
    created = await drgwatch(
        tmp_path, "users", "create", "Insurance office", "--role", "insurance_office",
        "--hospital", "*", "--url", service, env=operator,
    )  # fmt: skip
    assert created.code == 0, created.err
    office_key = re.findall(r"dwk_\S+", created.out)[0]

    imported = await drgwatch(
        tmp_path, "drg", "import", "province-2025.csv", "--effective-from", "2025-01-01",
        "--base-rate", "employee=11000", "--url", service, "--api-key", office_key,
    )  # fmt: skip
    assert imported.code == 0, imported.err
    assert imported.out.startswith("imported catalogue 1 'province-2025'")
    listed = await drgwatch(tmp_path, "drg", "list", "--url", service, "--api-key", office_key)
    assert re.search(r"^ +1 +2025-01-01 +\* +3 +in force today +province-2025", listed.out, re.M)

    # the insurance office maintains reference data but manages nobody
    refused = await drgwatch(tmp_path, "users", "list", "--url", service, "--api-key", office_key)
    assert refused.failed_with_one_line() == (
        f"drgwatch users list: drgwatch at {service} refused (403):"
        " the role insurance_office may not do this (identities:manage)"
    )
    no_key = await drgwatch(tmp_path, "drg", "list", "--url", service)
    assert no_key.failed_with_one_line() == (
        f"drgwatch drg list: drgwatch at {service} needs an API key:"
        " pass --api-key or set DRGWATCH_API_KEY"
    )
    wrong_key = await drgwatch(
        tmp_path, "thresholds", "list", "--url", service, env={"DRGWATCH_API_KEY": "dwk_wrong"}
    )
    assert wrong_key.failed_with_one_line().startswith(
        f"drgwatch thresholds list: drgwatch at {service} refused the API key (401)"
    )


async def test_each_wrong_target_is_one_line_and_creates_nothing(
    tmp_path: Path, own_postgres_url: str
) -> None:
    nowhere = tmp_path / "nowhere"
    for args in (
        ("drg", "list", "--data-dir", str(nowhere)),
        ("users", "create", "x", "--role", "admin", "--data-dir", str(nowhere)),
        ("thresholds", "list"),  # ./var in the working directory, which has none
    ):
        line = (await drgwatch(tmp_path, *args)).failed_with_one_line()
        assert "no drgwatch database in" in line, line
        assert "drgwatch up" in line and "drgwatch db upgrade" in line
    assert not nowhere.exists() and not (tmp_path / "var").exists()

    empty = await drgwatch(tmp_path, "drg", "list", "--database-url", own_postgres_url)
    assert "holds no drgwatch tables" in empty.failed_with_one_line()
    missing = own_postgres_url.rsplit("/", 1)[0] + "/drgwatch_no_such_database"
    line = (
        await drgwatch(tmp_path, "users", "list", "--database-url", missing)
    ).failed_with_one_line()
    assert line.endswith('database "drgwatch_no_such_database" does not exist')
    unreachable = "postgresql+asyncpg://drgwatch:secret@127.0.0.1:1/drgwatch"
    line = (
        await drgwatch(tmp_path, "drg", "list", "--database-url", unreachable)
    ).failed_with_one_line()
    assert line.startswith("drgwatch drg list: cannot use the database postgresql+asyncpg://")
    assert "secret" not in line
    sync_driver = await drgwatch(tmp_path, "drg", "list", "--database-url", "postgresql://u@h/db")
    assert "postgresql+asyncpg://" in sync_driver.failed_with_one_line()

    line = (
        await drgwatch(tmp_path, "drg", "list", "--url", "http://127.0.0.1:1")
    ).failed_with_one_line()
    assert line == (
        "drgwatch drg list: cannot reach drgwatch at http://127.0.0.1:1 (nothing accepts"
        " connections there); is drgwatch (drgwatch up, or drgwatch api) running there?"
    )
    both = await drgwatch(
        tmp_path, "drg", "list", "--url", "http://127.0.0.1:1", "--data-dir", str(nowhere)
    )
    assert both.code == 2 and "give one or the other" in both.failed_with_one_line()
    key_alone = await drgwatch(tmp_path, "users", "list", "--api-key", "dwk_x")
    assert key_alone.code == 2 and "--api-key goes with --url" in key_alone.failed_with_one_line()
    assert not nowhere.exists() and not (tmp_path / "var").exists()


async def test_a_server_that_is_not_drgwatch_and_a_bad_date_are_one_line_each(
    tmp_path: Path,
) -> None:
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, PlainTextResponse

    other = FastAPI()

    @other.get("/v1/drg-catalogues")
    async def catalogues() -> PlainTextResponse:
        return PlainTextResponse("hello")

    @other.get("/v1/hospitals/{hospital_id}/briefings/weekly")
    async def briefing(hospital_id: str) -> HTMLResponse:
        return HTMLResponse("<html>bad gateway</html>", status_code=502)

    async with serving(other) as base:
        listed = await drgwatch(tmp_path, "drg", "list", "--url", base)
        briefed = await drgwatch(tmp_path, "briefing", "--hospital", "H001", "--url", base)
    assert listed.failed_with_one_line() == (
        f"drgwatch drg list: drgwatch at {base} did not answer as drgwatch does"
        " (HTTP 200 text/plain; charset=utf-8)"
    )
    assert briefed.failed_with_one_line() == (
        f"drgwatch briefing: drgwatch at {base} did not answer as drgwatch does"
        " (HTTP 502 text/html; charset=utf-8)"
    )
    for args in (
        ("drg", "import", "f.csv", "--effective-from"),
        ("chargemaster", "item", "X", "--on"),
    ):
        dated = await drgwatch(tmp_path, *args, "2026-13-01")
        assert dated.code == 2
        assert dated.err.strip().endswith("'2026-13-01' is not a date (YYYY-MM-DD)"), dated.err
