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

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select

from services.bench import workload as bench_workload
from services.settings import CommonSettings
from services.storage.engine import make_engine
from services.storage.models import CaseRecord, WorkerHeartbeat

REQUEST_EVENTS = 200  # events per POST in the throughput phase
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Database:
    """What the API serves from: the cases table's counts."""

    def __init__(self, url: str) -> None:
        self.url = url

    def applied(self, hospital_id: str) -> tuple[int, int]:
        """(cases, events applied) of a hospital."""

        async def query() -> tuple[int, int]:
            engine = make_engine(self.url)
            try:
                async with engine.connect() as connection:
                    row = (
                        await connection.execute(
                            select(
                                func.count(), func.coalesce(func.sum(CaseRecord.events_applied), 0)
                            ).where(CaseRecord.hospital_id == hospital_id)
                        )
                    ).one()
                    return int(row[0]), int(row[1])
            finally:
                await engine.dispose()

        return asyncio.run(query())

    def worker_ready(self, pid: int) -> bool:
        """Whether the worker process `pid` reports itself ready (holds partitions)."""

        async def query() -> bool:
            engine = make_engine(self.url)
            try:
                async with engine.connect() as connection:
                    ready = await connection.scalar(
                        select(WorkerHeartbeat.ready).where(
                            WorkerHeartbeat.worker_id.endswith(f":{pid}")
                        )
                    )
                    return bool(ready)
            finally:
                await engine.dispose()

        return asyncio.run(query())

    def wait_for(self, hospital_id: str, events: int, timeout: float) -> float:
        """Poll until `events` are applied for the hospital; the moment they were."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.applied(hospital_id)[1] >= events:
                return time.time()
            time.sleep(0.05)
        raise TimeoutError(f"{hospital_id}: {events} events not applied within {timeout:.0f}s")


def loadgen(mode: str, config: dict[str, Any], work: Path, timeout: float) -> dict[str, Any]:
    config = {**config, "report": str(work / f"loadgen-{mode}.json")}
    config_file = work / f"loadgen-{mode}-config.json"
    config_file.write_bytes(orjson.dumps(config))
    with (work / f"loadgen-{mode}.log").open("ab") as log:
        subprocess.run(
            [sys.executable, "-m", "services.bench.loadgen", mode, str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=True,
        )
    result: dict[str, Any] = orjson.loads(Path(config["report"]).read_bytes())
    return result


def distinct_events(postings: list[list[dict[str, Any]]]) -> int:
    return len({event["event_id"] for posting in postings for event in posting})


def full_path(plan: FullPlan, *, echo: Any = print) -> dict[str, Any]:
    from services.ports import listening_socket, on_a_free_port
    from services.stack import prepare_database, start_broker, wait_ready
    from services.supervisor import start_child, stop_child
    from services.topics import create_topics

    work = Path(tempfile.mkdtemp(prefix="drgwatch-fullpath-"))
    http = listening_socket()  # handed to the API: its port cannot be taken meanwhile
    port = http.getsockname()[1]
    broker_port, broker = on_a_free_port(lambda port: start_broker(port, work / "broker.log"))
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        DRGWATCH_MODE="embedded",
        DRGWATCH_DATA_DIR=str(work),
        DRGWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{broker_port}",
        DRGWATCH_TOPIC_PARTITIONS=str(plan.partitions),
        DRGWATCH_TOPIC_PREFIX="fullpath",
    )
    settings = CommonSettings().model_copy(  # the database from DRGWATCH_DATABASE_URL
        update={
            "data_dir": work,
            "kafka_bootstrap": f"127.0.0.1:{broker_port}",
            "topic_partitions": plan.partitions,
            "topic_prefix": "fullpath",
        }
    )
    database = Database(settings.resolved_database_url)
    python = sys.executable
    children: list[subprocess.Popen[bytes]] = [broker]
    result: dict[str, Any] = {
        "database": settings.resolved_database_url.split(":")[0],
        "logs": str(work),
    }
    try:
        asyncio.run(create_topics(settings))
        asyncio.run(prepare_database(settings, replay_ledger=False))
        worker = start_child([python, "-m", "services.cli", "worker"], env, work / "worker.log")
        children.append(worker)
        api_argv = [python, "-m", "services.cli", "api", "--fd", str(http.fileno())]
        children.append(start_child(api_argv, env, work / "api.log", pass_fds=[http.fileno()]))
        wait_ready(url, 120, children)

        # 1. throughput, through the public API
        load = bench_workload.generate(plan.lines, plan.cases, hospital="HFULL")
        bodies = []
        flat = [event for posting in load.postings for event in posting]
        for start in range(0, len(flat), REQUEST_EVENTS):
            bodies.append(orjson.dumps({"events": flat[start : start + REQUEST_EVENTS]}))
        (work / "batches.jsonl").write_bytes(b"\n".join(bodies))
        echo(f"full path: posting {len(flat):,} events ({load.lines:,} lines) ...")
        posted = loadgen(
            "post",
            {"url": url, "batches_file": str(work / "batches.jsonl"), "concurrency": 4},
            work,
            timeout=900,
        )
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
        paced = bench_workload.generate(
            int(plan.latency_rate * plan.latency_seconds), 300, seed=12, hospital="HLAT"
        )
        (work / "paced.json").write_bytes(orjson.dumps(paced.postings))
        echo(f"full path: {plan.latency_rate:,.0f} lines/s for {plan.latency_seconds:.0f}s ...")
        result["alert_latency"] = loadgen(
            "paced",
            {
                "url": url,
                "postings_file": str(work / "paced.json"),
                "seconds": plan.latency_seconds,
                "hospital_id": "HLAT",
            },
            work,
            timeout=plan.latency_seconds + 120,
        )
        echo(f"  202 -> alert on the live stream: {result['alert_latency']['latency_ms']}")

        # 3. open cases, memory, lookups
        open_now = plan.cases + 300
        extra = max(0, plan.open_cases - open_now)
        admissions = [
            {
                "event_id": f"L{number:07d}-a",
                "type": "admitted",
                "hospital_id": "HLOOK",
                "case_id": f"L{number:07d}",
                "occurred_at": "2026-11-02T08:00:00+00:00",
                "department": "CARDIO",
                "drg_code": "FM15",
                "insurance_scheme": "employee",
                "admitted_at": "2026-11-02T08:00:00+00:00",
            }
            for number in range(extra)
        ]
        bodies = [
            orjson.dumps({"events": admissions[start : start + 500]})
            for start in range(0, len(admissions), 500)
        ]
        (work / "admissions.jsonl").write_bytes(b"\n".join(bodies))
        echo(f"full path: opening {extra:,} more cases ({plan.open_cases:,} open) ...")
        if bodies:
            loadgen(
                "post",
                {"url": url, "batches_file": str(work / "admissions.jsonl"), "concurrency": 4},
                work,
                timeout=900,
            )
            database.wait_for("HLOOK", extra, timeout=900)
        time.sleep(2)
        result["worker_rss_mb"] = {
            "open_cases": open_now + extra,
            "rss_mb": round(rss_mb(worker.pid)),
        }
        echo(
            f"  worker RSS with {open_now + extra:,} open cases: "
            f"{result['worker_rss_mb']['rss_mb']} MB"
        )
        lookup_cases = [f"L{n:07d}" for n in range(extra)] or [
            f"B{n:06d}" for n in range(plan.cases)
        ]
        result["case_lookup"] = loadgen(
            "lookup",
            {
                "url": url,
                "hospital_id": "HLOOK" if extra else "HFULL",
                "cases": lookup_cases,
                "rate": plan.lookup_rate,
                "seconds": plan.lookup_seconds,
            },
            work,
            timeout=plan.lookup_seconds + 120,
        )
        echo(f"  case lookup at {plan.lookup_rate:.0f}/s: {result['case_lookup']['latency_ms']}")
        result["precheck"] = loadgen(
            "precheck",
            {
                "url": url,
                "hospital_id": "HLOOK" if extra else "HFULL",
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
        os.killpg(worker.pid, signal.SIGKILL)
        killed = time.time()
        worker.wait()
        children.remove(worker)
        worker = start_child([python, "-m", "services.cli", "worker"], env, work / "worker.log")
        children.append(worker)
        deadline = killed + 300
        while not database.worker_ready(worker.pid) and time.time() < deadline:
            time.sleep(0.1)
        ready = time.time() - killed
        probe = {
            "event_id": "restart-probe",
            "type": "charge",
            "hospital_id": "HFULL",
            "case_id": "B000000",
            "occurred_at": "2026-11-03T08:00:00+00:00",
            "department": "CARDIO",
            "item_code": "PROBE",
            "item_name": "probe",
            "category": "lab",
            "quantity": "1",
            "unit_price": "1.00",
            "amount": "1.00",
        }
        before = database.applied("HFULL")[1]
        answer = httpx.post(f"{url}/v1/events", json=probe, timeout=30)
        answer.raise_for_status()
        visible = database.wait_for("HFULL", before + 1, timeout=300) - killed
        result["restart"] = {
            "open_cases": open_now + extra,
            "ready_s": round(ready, 1),
            "fresh_event_visible_s": round(visible, 1),
        }
        echo(f"  worker SIGKILL with every case open: {result['restart']}")
    finally:
        for child in reversed(children):
            stop_child(child)
        http.close()
    return result
