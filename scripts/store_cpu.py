"""CPU per message of the worker's batch path over each table store, in-process.

    PYTHONPATH=. .venv/bin/python scripts/store_cpu.py --store rocksdb [--lines 100000]

As scripts/batch_cpu.py (same workload, seal, price book and sink), but in batches of
the worker's size (DRGWATCH_BATCH_MAX_EVENTS, 1,000) and with the cases table the worker
builds (`create_worker`): the in-memory store, or RocksDB in a temporary data directory,
written per partition as the worker writes it. CPU time (all threads: RocksDB flushes
and compactions count), so compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_cpu import (  # noqa: E402
    PARTITIONS,
    TOPICS,
    Reference,
    apply_in_batches,
    sample_price_book,
    sealed,
    send,
)

from services.alerting.batch import LiveStates  # noqa: E402
from services.alerting.settings import WorkerSettings  # noqa: E402
from services.alerting.worker import create_worker  # noqa: E402
from services.bench import workload as bench_workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("rocksdb", "memory"), default="rocksdb")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()

    settings = WorkerSettings(
        data_dir=Path(tempfile.mkdtemp(prefix="drgwatch-store-cpu-")),
        topic_partitions=PARTITIONS,
        worker_store=args.store,
    )
    worker = create_worker(settings)
    worker.app.finalize()
    table = worker.case_table
    load = bench_workload.generate(args.lines, args.cases, seed=11)
    records = sealed([(m.key, m.value, m.case_seq) for m in load.messages])
    reference = Reference(sample_price_book())
    live = LiveStates(settings.live_states)
    tapped = table.tap(send)
    gc.collect()
    gc.freeze()

    started = time.process_time()
    asyncio.run(
        apply_in_batches(
            records,
            args.batch,
            store=table,
            reference=reference,
            live=live,
            send=tapped,
            topics=replace(TOPICS, changelog=worker.topics.changelog),
            before_each=table.begin_batch,
        )
    )
    cpu = time.process_time() - started
    states = hashlib.sha256(b"".join(key + value for key, value in sorted(table.items())))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    count = len(records)
    print(
        f"{args.store}: {count:,} messages in batches of {args.batch:,}:"
        f" {cpu / count * 1e6:.1f} µs of CPU per message; peak RSS {rss:.0f} MB;"
        f" states {states.hexdigest()[:12]}"
    )


if __name__ == "__main__":
    main()
