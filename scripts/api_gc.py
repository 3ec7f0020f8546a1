"""The API's full garbage-collector passes during case lookups, measured in-process.

    .venv/bin/python scripts/api_gc.py [--cases 20000] [--lookups 4000] [--runs 3]

Each run is a process of its own, in turn with the collector as the API had it (what
exists before start-up frozen) and as `drgwatch api` has it now (frozen again after
start-up and after the first `WARM_UP_REQUESTS` requests, services/cli/collector.py):
the app on a new SQLite file holding `--cases` open cases (written by the projector's
own `write_batch`), `--lookups` case lookups from 16 concurrent clients over httpx's
ASGI transport. It reports the full passes (generation 2) during the lookups: how many,
their total and longest CPU time (the thread's, so other processes' load counts little),
and the objects a pass walks (what is tracked and not frozen), plus the process's CPU
time per lookup (the client's share included). A pass holds every request in flight, so
it is what a lookup's tail waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def measure(mode: str, cases: int, lookups: int) -> dict[str, Any]:
    import httpx

    from services.alerting.projector import write_batch
    from services.api.app import create_app
    from services.api.settings import ApiSettings
    from services.casecost.apply import apply_event, new_case
    from services.casecost.events import parse_event
    from services.cli import collector
    from services.storage import schema
    from tests.api.corefactory import PRICE_BOOK
    from tests.api.helpers import admitted

    work = Path(tempfile.mkdtemp(prefix="drgwatch-api-gc-"))
    url = f"sqlite+aiosqlite:///{work / 'drgwatch.db'}"
    await schema.upgrade(url)
    settings = ApiSettings(database_url=url, topic_prefix="gc", data_dir=work)
    app: Any = create_app(settings, connect_broker=False)
    now = time.time()

    moment = datetime.fromtimestamp(now, UTC)
    states = []
    for number in range(cases):
        case_id = f"L{number:07d}"
        event = parse_event(admitted(f"{case_id}-a", case_id, hospital_id="HLOOK"))
        state = new_case("HLOOK", case_id)
        apply_event(state, event, PRICE_BOOK, moment)
        states.append(state.to_dict())
    collector.freeze()  # as _serve_api does before the server starts
    served = collector.FreezeAfterWarmUp(app) if mode == "after" else app
    async with app.router.lifespan_context(app):
        for start in range(0, len(states), 2000):
            await write_batch(
                app.state.engine, app.state.sessions, states[start : start + 2000], []
            )
        del states
        if mode == "after":
            collector.freeze()  # as the server does once start-up has finished
        passes: list[float] = []
        walked: list[int] = []
        started_at: list[float] = []

        def timing(phase: str, info: dict[str, Any]) -> None:
            if info["generation"] != 2:
                return
            if phase == "start":
                started_at.append(time.thread_time())
                walked.append(len(gc.get_objects()))
            else:
                passes.append((time.thread_time() - started_at.pop()) * 1000)

        transport = httpx.ASGITransport(app=served)
        rng = random.Random(5)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            queue = [f"L{rng.randrange(cases):07d}" for _ in range(lookups)]
            warm, queue = queue[:600], queue[600:]
            for case_id in warm:  # the first requests (the warm-up, in the "after" mode)
                response = await client.get(f"/v1/hospitals/HLOOK/cases/{case_id}")
                assert response.status_code == 200, response.text
            gc.callbacks.append(timing)
            cpu = time.process_time()

            async def one_client() -> None:
                while queue:
                    case_id = queue.pop()
                    response = await client.get(f"/v1/hospitals/HLOOK/cases/{case_id}")
                    assert response.status_code == 200

            await asyncio.gather(*(one_client() for _ in range(16)))
            cpu = time.process_time() - cpu
            gc.callbacks.remove(timing)
            kinds: dict[str, int] = {}
            for thing in gc.get_objects():
                kinds[type(thing).__name__] = kinds.get(type(thing).__name__, 0) + 1
            common = sorted(kinds.items(), key=lambda item: -item[1])[:6]
    return {
        "mode": mode,
        "full_passes": len(passes),
        "full_pass_ms_total": round(sum(passes), 1),
        "full_pass_ms_max": round(max(passes), 1) if passes else 0.0,
        "objects_walked_median": sorted(walked)[len(walked) // 2] if walked else 0,
        "frozen": gc.get_freeze_count(),
        "cpu_ms_per_lookup": round(cpu * 1000 / (lookups - 600), 3),
        "unfrozen_at_end": dict(common),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=4_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=["before", "after"])
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(asyncio.run(measure(args.mode, args.cases, args.lookups))))
        return
    for _ in range(args.runs):
        for mode in ("before", "after"):
            argv = [sys.executable, __file__, "--mode", mode, "--cases", str(args.cases)]
            argv += ["--lookups", str(args.lookups)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            print(out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
