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
import time
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from services.bench.measure import (
    Database,
    admission,
    charge,
    cpu_seconds,
    embedded_stack,
    rss_mb,
)
from services.settings import CommonSettings
from services.storage.engine import make_engine, session_factory
from services.storage.seal import load_seal
from services.wire import case_key

HOSPITAL = "HRST"


def admitted(case_id: str) -> dict[str, Any]:
    return admission(
        HOSPITAL,
        case_id,
        event_id=f"{case_id}-adm",
        at="2026-11-03T08:00:00+00:00",
        admitted_at="2026-11-01T08:00:00+00:00",
    )


def charged(case_id: str, number: int) -> dict[str, Any]:
    return charge(
        HOSPITAL,
        case_id,
        f"{case_id}-c{number}",
        item_code=f"ITEM{number % 7}",
        item_name="test item",
        category=("drug", "lab", "exam", "consumable")[number % 4],
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
                batch.append(charged(case_id, round_number))
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--updates", type=int, default=1)
    parser.add_argument("--store", choices=("rocksdb", "memory"), default="rocksdb")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()

    result: dict[str, Any] = {"store": args.store, "cases": args.cases, "updates": args.updates}
    with embedded_stack(
        "restart",
        partitions=args.partitions,
        own_database=True,
        DRGWATCH_WORKER_STORE=args.store,
    ) as stack:
        db = Database(stack.settings.resolved_database_url)
        print(f"{args.store}: {args.cases:,} cases x {args.updates} updates ...", flush=True)
        produce_rounds_started = time.time()
        produced = asyncio.run(produce_rounds(stack.settings, args.cases, args.updates, db))
        result["load_s"] = round(time.time() - produce_rounds_started, 1)
        assert stack.worker is not None
        result["rss_mb_before"] = round(rss_mb(stack.worker.pid))
        restarts = []
        for attempt in range(args.restarts):
            killed, ready_at = stack.restart_worker(timeout=600, log=f"worker{attempt}.log")
            assert stack.worker is not None
            cpu = cpu_seconds(stack.worker.pid)
            probe = charged(f"P{attempt:07d}", 1)  # a case of its own: the ledger numbers it
            answer = httpx.post(f"{stack.url}/v1/events", json=probe, timeout=30)
            answer.raise_for_status()
            produced += 1
            visible = db.wait_for(HOSPITAL, produced, timeout=600) - killed
            restarts.append(
                {
                    "ready_s": round(ready_at - killed, 1),
                    "worker_cpu_s_until_ready": round(cpu, 1),
                    "fresh_event_visible_s": round(visible, 1),
                    "rss_mb": round(rss_mb(stack.worker.pid)),
                }
            )
            print(f"  restart {attempt + 1}: {restarts[-1]}", flush=True)
        result["restarts"] = restarts
        print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
