"""Memory the worker's case table takes per 100,000 open cases, in-process.

    .venv/bin/python scripts/state_memory.py [--lines 200000] [--cases 5000] [--open 100000]

Builds the table as the worker holds it after the bench's full path: the bench workload
applied through `apply_batch` (services/alerting/batch.py) in batches of 25,000, then
admissions of new cases up to `--open` cases (as the bench opens them), with the
worker's default number of live states kept. Reports the process's RSS growth (ru_maxrss
is avoided: the records built for the run are freed first), the bytes the table holds,
and the largest allocation sites by tracemalloc with `--trace`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import sys
import tracemalloc
from datetime import timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.batch_cpu import (  # noqa: E402
    NOW,
    PARTITIONS,
    SEAL,
    TOPICS,
    Record,
    Reference,
    sample_price_book,
    send,
)
from services.alerting.batch import LiveStates, apply_batch  # noqa: E402
from services.alerting.settings import WorkerSettings  # noqa: E402
from services.bench import workload as bench_workload  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def admissions(count: int) -> list[tuple[bytes, bytes]]:
    """Admitted events of new cases, as the bench's full path opens them."""
    events = []
    for number in range(count):
        case_id = f"L{number:07d}"
        event = {
            "event_id": f"{case_id}-a",
            "type": "admitted",
            "hospital_id": "HLOOK",
            "case_id": case_id,
            "occurred_at": "2026-11-02T08:00:00+00:00",
            "department": "CARDIO",
            "drg_code": "FM15",
            "insurance_scheme": "employee",
            "admitted_at": "2026-11-02T08:00:00+00:00",
        }
        events.append((f"HLOOK/{case_id}".encode(), orjson.dumps(event)))
    return events


def sealed(messages: list[tuple[bytes, bytes, int | None]], first: int) -> list[Record]:
    return [
        Record(
            key,
            value,
            SEAL.headers(key, value, sequence),
            first + offset,
            int.from_bytes(hashlib.sha1(key).digest()[:4]) % PARTITIONS,
        )
        for offset, (key, value, sequence) in enumerate(messages)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--cases", type=int, default=5_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--trace", action="store_true", help="list the largest allocations")
    args = parser.parse_args()

    reference = Reference(sample_price_book())
    store: dict[bytes, bytes] = {}
    live = LiveStates(WorkerSettings().live_states)
    gc.collect()
    if args.trace:
        tracemalloc.start(4)
    start_rss = rss_mb()

    async def apply_all(records: list[Record]) -> None:
        for start in range(0, len(records), 25_000):
            await apply_batch(
                records[start : start + 25_000],
                store=store,
                send=send,
                reference=reference,
                live=live,
                topics=TOPICS,
                seal=SEAL,
                gap_timeout=timedelta(minutes=5),
                now=NOW,
                on_durable=lambda record: None,
            )

    load = bench_workload.generate(args.lines, args.cases, seed=11)
    records = sealed([(m.key, m.value, m.case_seq) for m in load.messages], 0)
    del load
    asyncio.run(apply_all(records))
    opened = max(0, args.open - len(store))
    more = sealed([(key, value, 1) for key, value in admissions(opened)], len(records))
    del records
    asyncio.run(apply_all(more))
    del more
    gc.collect()
    held = sum(len(key) + len(value) for key, value in store.items())
    grown = rss_mb() - start_rss
    print(
        f"{len(store):,} cases: RSS grew {grown:.0f} MB ({grown / len(store) * 1e5:.0f} MB per"
        f" 100,000 cases); the table holds {held / 2**20:.0f} MB of keys and states"
        f" ({held / len(store):.0f} bytes a case)"
    )
    if args.trace:
        snapshot = tracemalloc.take_snapshot()
        for stat in snapshot.statistics("lineno")[:15]:
            print(stat)


if __name__ == "__main__":
    main()
