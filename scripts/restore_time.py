"""Broker loss -> a fresh event visible, restored from case snapshots or from the whole
ledger, on a ledger built straight into PostgreSQL.

    .venv/bin/python scripts/restore_time.py --cases 100000 --events 10 --mode snapshots
    .venv/bin/python scripts/restore_time.py --cases 10000 --events 10 --mode ledger --runs 3

Builds a database `drgwatch_restore_time` (dropped afterwards) on 127.0.0.1:5432: the
sample catalogue, a ledger of `--cases` open cases x `--events` events each (an admission
then charges, all published, as if the lost broker had carried them), the cases'
sequence numbers and, with `--mode snapshots`, each case's snapshot as the projector
writes it (the state's changelog bytes: one case folded by the cost core, its ids put
in for each case; `--behind N`: the snapshots lag N events behind the ledger, as when
the projector had not caught up). Then, as `drgwatch up` does on a new broker: a fresh tansu broker,
the topics, the restore (`snapshots`: restore.restore_from_snapshots; `ledger`: every
entry marked unpublished), a worker and an API; one fresh event is posted for the case
ledgered last, and the time until the API shows it is taken. `--runs N` loses the broker
N times over the one ledger (each run posts one more fresh event).

Prints the restore step, the time to ready and to the fresh event visible (wall clock,
from the broker's start), and the CPU seconds of this process (which runs the restore)
and of the broker, worker and API (read from /proc when the event is visible).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.alerting.restore import restore_from_snapshots  # noqa: E402
from services.bench.measure import (  # noqa: E402
    case_events,
    charge,
    cpu_seconds,
    folded_state,
    python_child,
    scratch_postgres,
)
from services.ports import listening_socket, spare_port  # noqa: E402
from services.settings import CommonSettings  # noqa: E402
from services.stack import prepare_database, start_broker  # noqa: E402
from services.supervisor import stop_child  # noqa: E402
from services.topics import create_topics  # noqa: E402

DATABASE = "drgwatch_restore_time"
HOSPITAL = "H001"
TEMPLATE = "CASE-TEMPLATE"
RECEIVED = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def template_state(count: int) -> bytes:
    """One case folded by the cost core, as its changelog value."""
    return folded_state(HOSPITAL, TEMPLATE, case_events(HOSPITAL, TEMPLATE, count), RECEIVED)


async def build(
    database_url: str, cases: int, count: int, snapshots: bool, behind: int = 0
) -> None:
    settings = CommonSettings(database_url=database_url)
    await prepare_database(settings, replay_ledger=False)
    template = template_state(count - behind) if snapshots else b""
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{DATABASE}")
    try:
        chunk = 20_000
        for start in range(0, cases, chunk):
            ids = [f"C{n:07d}" for n in range(start, min(start + chunk, cases))]
            ledger = []
            for case_id in ids:
                for sequence, event in enumerate(case_events(HOSPITAL, case_id, count), start=1):
                    payload = orjson.dumps(event).decode()
                    digest = hashlib.sha256(payload.encode()).hexdigest()
                    ledger.append(
                        (
                            HOSPITAL,
                            event["event_id"],
                            case_id,
                            event["type"],
                            payload,
                            digest,
                            RECEIVED,
                            True,
                            sequence,
                        )
                    )
            await connection.copy_records_to_table(
                "ingest_ledger",
                records=ledger,
                columns=[
                    "hospital_id",
                    "event_id",
                    "case_id",
                    "event_type",
                    "payload",
                    "payload_hash",
                    "received_at",
                    "published",
                    "case_seq",
                ],
            )
            await connection.copy_records_to_table(
                "case_sequences",
                records=[(HOSPITAL, case_id, count) for case_id in ids],
                columns=["hospital_id", "case_id", "last_seq"],
            )
            if snapshots:
                await connection.copy_records_to_table(
                    "case_snapshots",
                    records=[
                        (
                            HOSPITAL,
                            case_id,
                            count - behind + 1,
                            template.replace(TEMPLATE.encode(), case_id.encode()),
                        )
                        for case_id in ids
                    ],
                    columns=["hospital_id", "case_id", "next_sequence", "state"],
                )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def measure(
    database_url: str, cases: int, count: int, mode: str, partitions: int, run: int
) -> None:
    """One broker loss and restore; `run` counts the fresh events posted before (0, 1, ...)."""
    workdir = Path(tempfile.mkdtemp(prefix="restore-time-"))
    port = spare_port()
    http = listening_socket()
    api_port = http.getsockname()[1]
    settings = CommonSettings(
        database_url=database_url,
        kafka_bootstrap=f"127.0.0.1:{port}",
        topic_partitions=partitions,
        data_dir=workdir,
    )
    env = dict(os.environ)
    env.update(
        DRGWATCH_MODE="embedded",
        DRGWATCH_DATABASE_URL=database_url,
        DRGWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        DRGWATCH_TOPIC_PARTITIONS=str(partitions),
        DRGWATCH_DATA_DIR=str(workdir),
    )
    children: dict[str, Any] = {}
    cpu_before = time.process_time()
    started = time.monotonic()
    try:
        children["broker"] = start_broker(port, workdir / "broker.log")
        asyncio.run(create_topics(settings))
        if mode == "snapshots":
            asyncio.run(prepare_database(settings, replay_ledger=False, load_sample=False))
            restored = asyncio.run(restore_from_snapshots(settings))
            what = f"{restored.snapshots} snapshots seeded, {restored.replayed} entries queued"
        else:
            queued = asyncio.run(prepare_database(settings, replay_ledger=True, load_sample=False))
            what = f"{queued} entries queued"
        restore_done = time.monotonic() - started
        restore_cpu = time.process_time() - cpu_before
        children["worker"] = python_child("worker", env, workdir / "worker.log")
        children["api"] = python_child("api", env, workdir / "api.log", http)
        base = f"http://127.0.0.1:{api_port}"
        while True:  # polled often: the time to ready is one of the figures
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        ready = time.monotonic() - started
        last = f"C{cases - 1:07d}"
        fresh = charge(
            HOSPITAL,
            last,
            f"{last}-fresh{run}",
            at="2026-03-03T10:00:00+08:00",
            department="CARD",
            item_code="FRESH",
            item_name="Fresh item",
            category="other",
            unit_price="1.00",
        )
        response = httpx.post(f"{base}/v1/events", json=fresh, timeout=30)
        assert response.status_code == 202, response.text
        deadline = time.monotonic() + 1800
        url = f"{base}/v1/hospitals/{HOSPITAL}/cases/{last}"
        while time.monotonic() < deadline:
            answer = httpx.get(url, timeout=10)
            if answer.status_code == 200 and answer.json()["events_applied"] == count + run + 1:
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the fresh event was not visible in 30 minutes")
        visible = time.monotonic() - started
        cpu = {name: cpu_seconds(child.pid) for name, child in children.items()}
        own = time.process_time() - cpu_before
        print(
            f"{mode}: {cases} cases x {count} events = {cases * count} ledgered;"
            f" restore step {restore_done:.1f} s ({restore_cpu:.1f} s CPU here: {what});"
            f" ready {ready:.1f} s; fresh event visible {visible:.1f} s after the broker start"
        )
        print(
            "  CPU s: "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
            + f", this process {own:.1f}; total {sum(cpu.values()) + own:.1f}"
        )
    finally:
        for child in reversed(list(children.values())):
            stop_child(child, timeout=10)
        http.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10, help="events per case")
    parser.add_argument("--mode", choices=["snapshots", "ledger"], default="snapshots")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1, help="broker losses on the one ledger")
    parser.add_argument(
        "--behind", type=int, default=0, help="snapshots lag this many events behind the ledger"
    )
    args = parser.parse_args()
    with scratch_postgres(DATABASE) as database_url:
        built = time.monotonic()
        snapshots = args.mode == "snapshots"
        asyncio.run(build(database_url, args.cases, args.events, snapshots, args.behind))
        print(f"built in {time.monotonic() - built:.0f} s", flush=True)
        for run in range(args.runs):
            measure(database_url, args.cases, args.events, args.mode, args.partitions, run)


if __name__ == "__main__":
    main()
