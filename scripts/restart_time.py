"""How long a SIGKILLed worker takes to be ready again, with N open cases each updated K
times: the changelog holds about N x K records, which a worker restarting with the
in-memory table reads in full and one with its RocksDB table reads from its offset on.

The embedded broker, a worker and the API (SQLite in a temporary directory). The events
are produced sealed straight onto the events topic, round after round (each case once a
round, so that each round writes one changelog record per case); the worker is then
SIGKILLed and started again `--restarts` times. For each restart: the seconds until it
reports itself ready, the CPU seconds it spent until then, its resident memory, and the
seconds until a fresh event posted to the API is in the database.

    PYTHONPATH=. .venv/bin/python scripts/restart_time.py --cases 20000 --updates 5 \
        --store rocksdb --restarts 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from services.bench.fullpath import Database, rss_mb
from services.ports import listening_socket, on_a_free_port
from services.settings import CommonSettings
from services.stack import prepare_database, start_broker, wait_ready
from services.storage.engine import make_engine, session_factory
from services.storage.seal import load_seal
from services.supervisor import start_child, stop_child
from services.topics import create_topics
from services.wire import case_key

HOSPITAL = "HRST"


def event(kind: str, case_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": kind,
        "hospital_id": HOSPITAL,
        "case_id": case_id,
        "occurred_at": "2026-11-03T08:00:00+00:00",
        **fields,
    }


def admitted(case_id: str) -> dict[str, Any]:
    return event(
        "admitted",
        case_id,
        f"{case_id}-adm",
        department="CARDIO",
        drg_code="FM15",
        insurance_scheme="employee",
        admitted_at="2026-11-01T08:00:00+00:00",
    )


def charge(case_id: str, number: int) -> dict[str, Any]:
    return event(
        "charge",
        case_id,
        f"{case_id}-c{number}",
        department="CARDIO",
        item_code=f"ITEM{number % 7}",
        item_name="test item",
        category=("drug", "lab", "exam", "consumable")[number % 4],
        quantity="1",
        unit_price="12.50",
        amount="12.50",
    )


async def produce_rounds(settings: CommonSettings, cases: int, updates: int, db: Database) -> int:
    """Each case admitted, then charged once a round; returns the events produced."""
    engine = make_engine(settings.resolved_database_url)
    seal = await load_seal(session_factory(engine))
    await engine.dispose()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    produced = 0
    try:
        for round_number in range(updates):
            for number in range(cases):
                case_id = f"R{number:07d}"
                key = case_key(HOSPITAL, case_id)
                batch = [admitted(case_id)] if round_number == 0 else []
                batch.append(charge(case_id, round_number))
                for body in batch:
                    value = orjson.dumps(body)
                    # the ledger's sequence of the case: 1 the admission, then the charges
                    sequence = 1 if body["type"] == "admitted" else round_number + 2
                    await producer.send(
                        settings.events_topic,
                        value=value,
                        key=key,
                        headers=seal.headers(key, value, sequence),
                    )
                    produced += 1
            await producer.flush()
            # the next round only once this one is applied: one changelog record per case
            await asyncio.to_thread(db.wait_for, HOSPITAL, produced, 1800)
            print(f"  round {round_number + 1}/{updates}: {produced:,} events applied", flush=True)
    finally:
        await producer.stop()
    return produced


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--updates", type=int, default=1)
    parser.add_argument("--store", choices=("rocksdb", "memory"), default="rocksdb")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="drgwatch-restart-"))
    http = listening_socket()
    url = f"http://127.0.0.1:{http.getsockname()[1]}"
    broker_port, broker = on_a_free_port(lambda port: start_broker(port, work / "broker.log"))
    env = {k: v for k, v in os.environ.items() if k != "DRGWATCH_DATABASE_URL"}
    env.update(
        DRGWATCH_MODE="embedded",
        DRGWATCH_DATA_DIR=str(work),
        DRGWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{broker_port}",
        DRGWATCH_TOPIC_PARTITIONS=str(args.partitions),
        DRGWATCH_TOPIC_PREFIX="restart",
        DRGWATCH_WORKER_STORE=args.store,
    )
    settings = CommonSettings(
        data_dir=work,
        kafka_bootstrap=f"127.0.0.1:{broker_port}",
        topic_partitions=args.partitions,
        topic_prefix="restart",
    )
    db = Database(settings.resolved_database_url)
    python = sys.executable
    children: list[subprocess.Popen[bytes]] = [broker]
    result: dict[str, Any] = {"store": args.store, "cases": args.cases, "updates": args.updates}
    try:
        asyncio.run(create_topics(settings))
        asyncio.run(prepare_database(settings, replay_ledger=False))
        worker = start_child([python, "-m", "services.cli", "worker"], env, work / "worker.log")
        children.append(worker)
        api_argv = [python, "-m", "services.cli", "api", "--fd", str(http.fileno())]
        children.append(start_child(api_argv, env, work / "api.log", pass_fds=[http.fileno()]))
        wait_ready(url, 120, children)
        print(f"{args.store}: {args.cases:,} cases x {args.updates} updates ...", flush=True)
        produce_rounds_started = time.time()
        produced = asyncio.run(produce_rounds(settings, args.cases, args.updates, db))
        result["load_s"] = round(time.time() - produce_rounds_started, 1)
        result["rss_mb_before"] = round(rss_mb(worker.pid))
        restarts = []
        for attempt in range(args.restarts):
            os.killpg(worker.pid, signal.SIGKILL)
            killed = time.time()
            worker.wait()
            children.remove(worker)
            worker = start_child(
                [python, "-m", "services.cli", "worker"], env, work / f"worker{attempt}.log"
            )
            children.append(worker)
            while not db.worker_ready(worker.pid) and time.time() < killed + 600:
                time.sleep(0.1)
            ready = time.time() - killed
            cpu = cpu_seconds(worker.pid)
            probe = charge(f"P{attempt:07d}", 1)  # a case of its own: the ledger numbers it
            answer = httpx.post(f"{url}/v1/events", json=probe, timeout=30)
            answer.raise_for_status()
            produced += 1
            visible = db.wait_for(HOSPITAL, produced, timeout=600) - killed
            restarts.append(
                {
                    "ready_s": round(ready, 1),
                    "worker_cpu_s_until_ready": round(cpu, 1),
                    "fresh_event_visible_s": round(visible, 1),
                    "rss_mb": round(rss_mb(worker.pid)),
                }
            )
            print(f"  restart {attempt + 1}: {restarts[-1]}", flush=True)
        result["restarts"] = restarts
        print(orjson.dumps(result).decode(), flush=True)
    finally:
        for child in reversed(children):
            stop_child(child)
        http.close()


if __name__ == "__main__":
    main()
