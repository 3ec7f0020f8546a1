"""Memory the worker's case table takes per 100,000 open cases, in-process.

    .venv/bin/python scripts/state_memory.py [--lines 200000] [--cases 5000] [--open 100000]

Builds the table as the worker holds it after the bench's full path: the bench workload
applied through `apply_batch` (services/alerting/batch.py) in batches of 25,000, then
admissions of new cases up to `--open` cases (as the bench opens them). Then a fresh
process, the worker's modules imported, reads the states back into a dict of bytes (the
table) and decodes the last-written 4,096 of them (the live states the worker keeps by
default): the RSS it grew by doing so is the table's memory, apart from what building it
left behind. Also reports the bytes the table holds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.batch_cpu import (  # noqa: E402
    Record,
    Reference,
    apply_in_batches,
    sample_price_book,
    sealed,
)
from services.alerting.batch import LiveStates  # noqa: E402
from services.alerting.settings import WorkerSettings  # noqa: E402
from services.bench import workload as bench_workload  # noqa: E402
from services.bench.measure import lookup_admissions  # noqa: E402
from services.casecost.state import CaseState, state_data  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def admissions(count: int) -> list[tuple[bytes, bytes]]:
    """Admitted events of new cases, as the bench's full path opens them."""
    return [
        (f"{event['hospital_id']}/{event['case_id']}".encode(), orjson.dumps(event))
        for event in lookup_admissions(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--cases", type=int, default=5_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--hold", metavar="FILE", help=argparse.SUPPRESS)  # the second process
    args = parser.parse_args()
    if args.hold:
        hold(Path(args.hold))
        return

    reference = Reference(sample_price_book())
    store: dict[bytes, bytes] = {}
    live = LiveStates(WorkerSettings().live_states)

    def apply_all(records: list[Record]) -> None:
        asyncio.run(apply_in_batches(records, 25_000, store=store, reference=reference, live=live))

    load = bench_workload.generate(args.lines, args.cases, seed=11)
    records = sealed([(m.key, m.value, m.case_seq) for m in load.messages], 0)
    del load
    apply_all(records)
    opened = max(0, args.open - len(store))
    more = sealed([(key, value, 1) for key, value in admissions(opened)], len(records))
    del records
    apply_all(more)
    del more
    held = sum(len(key) + len(value) for key, value in store.items())
    print(
        f"{len(store):,} cases: the table holds {held / 2**20:.0f} MB of keys and states"
        f" ({held / len(store):.0f} bytes a case)"
    )
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "states"
        saved.write_bytes(b"".join(_framed(key) + _framed(value) for key, value in store.items()))
        subprocess.run([sys.executable, __file__, "--hold", str(saved)], check=True)


def _framed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def hold(saved: Path) -> None:
    """Read the states back as the worker holds them; print the RSS that took."""
    gc.collect()
    before = rss_mb()
    raw = saved.read_bytes()  # one allocation, given back to the system when deleted
    store: dict[bytes, bytes] = {}
    position, key = 0, None
    while position < len(raw):
        size = int.from_bytes(raw[position : position + 4], "big")
        data = raw[position + 4 : position + 4 + size]
        position += 4 + size
        if key is None:
            key = data
        else:
            store[key], key = data, None
    live = LiveStates(WorkerSettings().live_states)
    for key in list(store)[-WorkerSettings().live_states :]:
        live.keep(key, store[key], CaseState.from_dict(state_data(store[key])))
    del raw
    gc.collect()
    grown = rss_mb() - before
    print(
        f"RSS of the table and the live states: {grown:.0f} MB for {len(store):,} cases"
        f" ({grown / len(store) * 1e5:.0f} MB per 100,000)"
    )


if __name__ == "__main__":
    main()
