"""The full path, measured: HTTP ingest -> ledger -> Kafka -> worker -> queryable state.

The whole embedded stack as `drgwatch up` runs it (tansu, the worker, the API, the
database: SQLite unless DRGWATCH_DATABASE_URL names another), driven by the load
generator (loadgen.py) in a process of its own:

1. throughput: the benchmark workload posted as fast as ingest answers, timed from the
   first post until every event is reflected in the database the API reads;
2. latency: postings offered at a steady rate; from each 202 to the alert it caused
   arriving on the live stream (`/v1/alerts/stream`);
3. lookup: open cases added up to the target count, then case lookups at a steady rate;
   the worker's resident memory with all those cases in its table; then pre-checks of
   those cases at a steady rate, with items of the sample chargemaster (prices looked
   up, cheaper equivalents listed);
4. restart: the worker SIGKILLed with every case open, a new one started; until it is
   ready and a fresh event is reflected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from services.bench import measure
from services.bench import workload as bench_workload
from services.bench.measure import REQUEST_EVENTS

# pre-checks as a ward orders: items of the sample chargemaster, most priced from it (no
# unit_price), several in equivalence groups (stents, statins, joints), one priced as given
PRECHECK_BODIES: list[dict[str, Any]] = [
    {
        "items": [
            {"item_code": "C-STENT-IMP", "quantity": "1"},
            {"item_code": "P-PCI", "quantity": "1"},
        ]
    },
    {
        "items": [
            {"item_code": "D-ATOR20-BRAND", "quantity": "30"},
            {"item_code": "D-CLOP75-BRAND", "quantity": "30"},
            {"item_code": "L-CBC", "quantity": "1"},
        ]
    },
    {
        "items": [
            {"item_code": "C-HIP-IMP", "quantity": "1"},
            {"item_code": "P-THA", "quantity": "1"},
            {"item_code": "N-LEVEL1", "quantity": "5"},
            {"item_code": "B-WARD3", "quantity": "5"},
        ]
    },
    {
        "items": [
            {"item_code": "C-STENT-DOM", "quantity": "2"},
            {"item_code": "C-GWIRE-IMP", "quantity": "1"},
            {"item_code": "E-ECHO", "quantity": "1"},
        ]
    },
    {
        "items": [
            {"item_code": "D-LMWH4100", "quantity": "7", "unit_price": "28.50"},
            {"item_code": "E-CT-CHEST", "quantity": "1"},
        ]
    },
]


@dataclass
class FullPlan:
    lines: int
    cases: int
    open_cases: int  # cases open in the worker for the lookup, memory and restart figures
    latency_rate: float = 1000.0
    latency_seconds: float = 20.0
    lookup_rate: float = 200.0
    lookup_seconds: float = 15.0
    precheck_rate: float = 200.0
    precheck_seconds: float = 15.0
    concurrency: int = 4
    partitions: int = 8
    restart: bool = True


def distinct_events(postings: list[list[dict[str, Any]]]) -> int:
    return len({event["event_id"] for posting in postings for event in posting})


def full_path(plan: FullPlan, *, echo: Any = print) -> dict[str, Any]:
    with measure.embedded_stack("fullpath", partitions=plan.partitions) as stack:
        return _measured(plan, stack, echo)


def _measured(plan: FullPlan, stack: measure.EmbeddedStack, echo: Any) -> dict[str, Any]:
    url, work = stack.url, stack.work
    database = measure.Database(stack.settings.resolved_database_url)
    result: dict[str, Any] = {
        "database": stack.settings.resolved_database_url.split(":")[0],
        "logs": str(work),
    }

    # 1. throughput, through the public API
    load = bench_workload.generate(plan.lines, plan.cases, hospital="HFULL")
    flat = [event for posting in load.postings for event in posting]
    echo(f"full path: posting {len(flat):,} events ({load.lines:,} lines) ...")
    posted = measure.post_events(url, work, flat, "batches", REQUEST_EVENTS)
    done_at = database.wait_for("HFULL", distinct_events(load.postings), timeout=900)
    seconds = done_at - posted["first_post_at"]
    result["throughput"] = {
        "lines": load.lines,
        "events": len(flat),
        "seconds": round(seconds, 2),
        "lines_per_s": round(load.lines / seconds),
        "ingest_only_lines_per_s": round(
            load.lines / (posted["last_answer_at"] - posted["first_post_at"])
        ),
        "answers": posted["answers"],
    }
    echo(f"  {result['throughput']['lines_per_s']:,} lines/s to queryable state")

    # 2. latency at a steady offered rate
    echo(f"full path: {plan.latency_rate:,.0f} lines/s for {plan.latency_seconds:.0f}s ...")
    result["alert_latency"], _ = measure.paced_load(
        url, work, plan.latency_rate, plan.latency_seconds
    )
    echo(f"  202 -> alert on the live stream: {result['alert_latency']['latency_ms']}")

    # 3. open cases, memory, lookups
    open_now = plan.cases + 300
    extra = max(0, plan.open_cases - open_now)
    echo(f"full path: opening {extra:,} more cases ({plan.open_cases:,} open) ...")
    measure.open_lookup_cases(url, work, database, extra)
    time.sleep(2)
    assert stack.worker is not None
    result["worker_rss_mb"] = {
        "open_cases": open_now + extra,
        "rss_mb": round(measure.rss_mb(stack.worker.pid)),
    }
    echo(
        f"  worker RSS with {open_now + extra:,} open cases: {result['worker_rss_mb']['rss_mb']} MB"
    )
    lookup_cases = [f"L{n:07d}" for n in range(extra)] or [f"B{n:06d}" for n in range(plan.cases)]
    result["case_lookup"] = measure.loadgen(
        "lookup",
        {
            "url": url,
            "hospital_id": measure.LOOKUP_HOSPITAL if extra else "HFULL",
            "cases": lookup_cases,
            "rate": plan.lookup_rate,
            "seconds": plan.lookup_seconds,
        },
        work,
        timeout=plan.lookup_seconds + 120,
    )
    echo(f"  case lookup at {plan.lookup_rate:.0f}/s: {result['case_lookup']['latency_ms']}")
    result["precheck"] = measure.loadgen(
        "precheck",
        {
            "url": url,
            "hospital_id": measure.LOOKUP_HOSPITAL if extra else "HFULL",
            "cases": lookup_cases,
            "bodies": PRECHECK_BODIES,
            "rate": plan.precheck_rate,
            "seconds": plan.precheck_seconds,
        },
        work,
        timeout=plan.precheck_seconds + 120,
    )
    echo(f"  pre-check at {plan.precheck_rate:.0f}/s: {result['precheck']['latency_ms']}")

    # 4. restart with every case open
    if not plan.restart:
        return result
    killed, ready_at = stack.restart_worker(timeout=300)
    probe = measure.charge(
        "HFULL",
        "B000000",
        "restart-probe",
        item_code="PROBE",
        item_name="probe",
        unit_price="1.00",
    )
    before = database.applied("HFULL")[1]
    answer = httpx.post(f"{url}/v1/events", json=probe, timeout=30)
    answer.raise_for_status()
    visible = database.wait_for("HFULL", before + 1, timeout=300) - killed
    result["restart"] = {
        "open_cases": open_now + extra,
        "ready_s": round(ready_at - killed, 1),
        "fresh_event_visible_s": round(visible, 1),
    }
    echo(f"  worker SIGKILL with every case open: {result['restart']}")
    return result
