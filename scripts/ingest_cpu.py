"""The API's CPU per posting on POST /v1/events, measured in-process.

    .venv/bin/python scripts/ingest_cpu.py postgresql|sqlite [--postings 2000] [--clients 16]

The app (no broker, no webhook sender) runs on a new database: PostgreSQL on
127.0.0.1:5432 as user postgres (a database `drgwatch_ingest_cpu`, dropped afterwards),
or a SQLite file in a temporary directory. An httpx client on the ASGI transport posts
postings of 4 events (an admission and three charges) for a case each, from `--clients`
concurrent callers, after 50 postings to warm up. CPU is the process's (time.process_time,
user and system; on SQLite that includes the database's threads), so the client's share is
in it too; other processes on the machine do not count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.api.app import create_app  # noqa: E402
from services.api.settings import ApiSettings  # noqa: E402
from services.bench.measure import admission, charge, scratch_postgres  # noqa: E402

DATABASE = "drgwatch_ingest_cpu"
WARM_UP = 50


def posting(number: int, run: str) -> dict[str, Any]:
    case = f"{run}-C{number}"
    at = "2026-03-02T09:00:00+08:00"
    admitted = admission("H001", case, at="2026-03-02T08:00:00+08:00", department="CARD")
    charges = [
        charge(
            "H001",
            case,
            f"{case}-c{k}",
            at=at,
            department="CARD",
            item_code=f"LAB00{k}",
            quantity="2",
        )
        for k in range(3)
    ]
    return {"events": [admitted, *charges]}


async def measure(database: str, url: str, data_dir: Path, postings: int, clients: int) -> None:
    settings = ApiSettings(
        database_url=url, topic_prefix="ingest-cpu", data_dir=data_dir, webhooks=False
    )
    app = create_app(settings, connect_broker=False, import_rule_files=False)
    run = uuid.uuid4().hex[:6]
    bodies = [posting(n, run) for n in range(postings + WARM_UP)]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            for body in bodies[postings:]:
                response = await client.post("/v1/events", json=body)
                assert response.status_code == 202, response.text
            queue = iter(bodies[:postings])
            statuses: dict[int, int] = {}

            async def caller() -> None:
                for body in queue:
                    response = await client.post("/v1/events", json=body)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            before = resource.getrusage(resource.RUSAGE_SELF)
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(clients)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = resource.getrusage(resource.RUSAGE_SELF)
    assert statuses == {202: postings}, statuses
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    print(
        f"{database}: {postings} postings of 4 events, {clients} clients:"
        f" {1000 * cpu / postings:.2f} ms CPU a posting (user {1000 * user / postings:.2f},"
        f" system {1000 * system / postings:.2f}); {postings / wall:.0f} postings/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", choices=["postgresql", "sqlite"])
    parser.add_argument("--postings", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    arguments = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="drgwatch-ingest-cpu-"))
    with (
        scratch_postgres(DATABASE)
        if arguments.database == "postgresql"
        else contextlib.nullcontext(f"sqlite+aiosqlite:///{data_dir / 'drgwatch.db'}")
    ) as url:
        asyncio.run(
            measure(arguments.database, url, data_dir, arguments.postings, arguments.clients)
        )


if __name__ == "__main__":
    main()
