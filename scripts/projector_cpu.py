"""The projector's CPU per batch written, with and without the case snapshots.

    .venv/bin/python scripts/projector_cpu.py [--cases 500] [--batches 40]

On a new PostgreSQL database `drgwatch_projector_cpu` (127.0.0.1:5432, dropped
afterwards): `--cases` case states of ten events each, folded by the cost core, written
`--batches` times by projector.write_batch as the projector writes a batch (alternately
with the changelog values, which keeps the snapshots, and without). CPU is this
process's (time.process_time); the database server's own work is not in it, and its
wall-clock time is printed beside.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.alerting.projector import write_batch  # noqa: E402
from services.bench.measure import case_events, folded_state, scratch_postgres  # noqa: E402
from services.casecost.state import state_data  # noqa: E402
from services.storage import schema  # noqa: E402
from services.storage.engine import make_engine, session_factory  # noqa: E402

DATABASE = "drgwatch_projector_cpu"
NOW = datetime(2026, 3, 2, tzinfo=UTC)


def case_state(case_id: str) -> bytes:
    """A case of ten events (an admission, nine lab charges of as many items), folded."""
    return folded_state("H001", case_id, case_events("H001", case_id, 10, items=10), NOW)


async def measure(url: str, cases: int, batches: int) -> None:
    await schema.upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    values = [case_state(f"C{n:05d}") for n in range(cases)]
    states = [state_data(value) for value in values]
    spent = {"with snapshots": [0.0, 0.0], "without": [0.0, 0.0]}
    try:
        for batch in range(batches + 2):
            keep = batch % 2 == 0
            cpu, wall = time.process_time(), time.perf_counter()
            await write_batch(engine, sessions, states, [], state_values=values if keep else None)
            if batch >= 2:  # the first two write the rows for the first time
                figures = spent["with snapshots" if keep else "without"]
                figures[0] += time.process_time() - cpu
                figures[1] += time.perf_counter() - wall
    finally:
        await engine.dispose()
    per = batches // 2
    for what, (cpu_s, wall_s) in spent.items():
        print(
            f"{what}: {cpu_s / per * 1000:.1f} ms CPU, {wall_s / per * 1000:.1f} ms wall"
            f" per batch of {cases} cases"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    with scratch_postgres(DATABASE) as url:
        asyncio.run(measure(url, args.cases, args.batches))


if __name__ == "__main__":
    main()
