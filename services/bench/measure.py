"""What the full-path benchmark and the measurement scripts (scripts/) share.

- a process's CPU time and resident memory, read from /proc;
- the counts of the database the API serves from, and whether a worker is ready;
- the embedded stack as `drgwatch up` runs it (tansu, the topics, the database, the
  worker, the API on loopback), started in a temporary directory and stopped on leaving;
- the load generator (loadgen.py) run in a process of its own: the paced workload, and
  events posted in batches as fast as ingest answers;
- events of the contract's shape, and a case folded by the cost core as its state bytes;
- a PostgreSQL database of its own on 127.0.0.1:5432, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from services.settings import CommonSettings
from services.storage.engine import make_engine
from services.storage.models import CaseRecord, WorkerHeartbeat

REQUEST_EVENTS = 200  # events a POST when posting as fast as ingest answers
LOOKUP_HOSPITAL = "HLOOK"  # the hospital of the cases opened for lookups
PACED_HOSPITAL = "HLAT"  # the hospital of the paced workload
ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int, thread: int | None = None) -> tuple[float, float]:
    """(user, system) CPU seconds of the process `pid` so far (every thread), or of one
    `thread` of it."""
    where = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(where).read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of the process so far, its threads included."""
    return sum(cpu_times(pid))


def rss_mb(pid: int) -> float:
    """The process's resident memory, MB."""
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


def python_child(
    command: str, env: dict[str, str], log: Path, http: socket.socket | None = None
) -> subprocess.Popen[bytes]:
    """`drgwatch <command>` as a supervised child; `http` a listening socket it serves on."""
    from services.supervisor import start_child

    argv = [sys.executable, "-m", "services.cli", command]
    if http is None:
        return start_child(argv, env, log)
    return start_child([*argv, "--fd", str(http.fileno())], env, log, pass_fds=[http.fileno()])


@dataclass
class EmbeddedStack:
    """The processes of a stack started by `embedded_stack`, and how to reach them."""

    work: Path
    url: str
    settings: CommonSettings
    env: dict[str, str]
    broker: subprocess.Popen[bytes]
    api: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    def start_worker(self, log: str = "worker.log") -> subprocess.Popen[bytes]:
        self.worker = python_child("worker", self.env, self.work / log)
        self.children.append(self.worker)
        return self.worker

    def kill_worker(self) -> float:
        """SIGKILL to the worker's process group; the moment it was sent."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        killed = time.time()
        self.worker.wait()
        self.children.remove(self.worker)
        self.worker = None
        return killed

    def restart_worker(self, timeout: float, log: str = "worker.log") -> tuple[float, float]:
        """The worker SIGKILLed and a new one started: (killed at, ready at), the second
        once it reports itself ready in the database or `timeout` seconds passed."""
        killed = self.kill_worker()
        worker = self.start_worker(log)
        database = Database(self.settings.resolved_database_url)
        while not database.worker_ready(worker.pid) and time.time() < killed + timeout:
            time.sleep(0.1)
        return killed, time.time()


@contextlib.contextmanager
def embedded_stack(
    name: str,
    *,
    partitions: int | None = None,
    worker: bool = True,
    own_database: bool = False,
    ready: bool = True,
    **env: str,
) -> Iterator[EmbeddedStack]:
    """The embedded stack in a new temporary directory, topics prefixed `name`: tansu,
    the topics, the database (SQLite in the directory, or DRGWATCH_DATABASE_URL's unless
    `own_database`), with `worker` the worker, and the API. With `ready`, returns once
    /readyz answers 200 (which asks for a ready worker); else once the API serves with
    its database and broker. `env`: more DRGWATCH_* settings for the children."""
    from services.ports import listening_socket, on_a_free_port
    from services.stack import prepare_database, start_broker, wait_ready
    from services.supervisor import stop_child
    from services.topics import create_topics

    work = Path(tempfile.mkdtemp(prefix=f"drgwatch-{name}-"))
    http = listening_socket()  # handed to the API: its port cannot be taken meanwhile
    url = f"http://127.0.0.1:{http.getsockname()[1]}"
    broker_port, broker = on_a_free_port(lambda port: start_broker(port, work / "broker.log"))
    bootstrap = f"127.0.0.1:{broker_port}"
    environment = dict(os.environ)
    if own_database:
        environment.pop("DRGWATCH_DATABASE_URL", None)
    environment.update(
        DRGWATCH_MODE="embedded",
        DRGWATCH_DATA_DIR=str(work),
        DRGWATCH_KAFKA_BOOTSTRAP=bootstrap,
        DRGWATCH_TOPIC_PREFIX=name,
        **env,
    )
    update: dict[str, Any] = {"data_dir": work, "kafka_bootstrap": bootstrap, "topic_prefix": name}
    if partitions is not None:
        environment["DRGWATCH_TOPIC_PARTITIONS"] = str(partitions)
        update["topic_partitions"] = partitions
    if own_database:
        update["database_url"] = ""
    settings = CommonSettings().model_copy(update=update)
    stack = EmbeddedStack(work, url, settings, environment, broker, children=[broker])
    try:
        asyncio.run(create_topics(settings))
        asyncio.run(prepare_database(settings, replay_ledger=False))
        if worker:
            stack.start_worker()
        stack.api = python_child("api", environment, work / "api.log", http)
        stack.children.append(stack.api)
        if ready:
            wait_ready(url, 120, stack.children)
        else:
            wait_serving(url, 120)
        yield stack
    finally:
        for child in reversed(stack.children):
            stop_child(child)
        http.close()


def wait_serving(url: str, timeout: float) -> None:
    """Until the API answers with its database and broker ready (no worker is asked for)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            checks = httpx.get(f"{url}/readyz", timeout=2).json()["checks"]
            if checks["database"] == "ok" and checks["broker"] == "ok":
                return
        time.sleep(0.5)
    raise RuntimeError(f"the API was not serving after {timeout:.0f}s")


def loadgen(mode: str, config: dict[str, Any], work: Path, timeout: float) -> dict[str, Any]:
    """The load generator in `mode` in a process of its own; its report."""
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


def paced_load(
    url: str, work: Path, rate: float, seconds: float, *, timeout: float = 120, **options: Any
) -> tuple[dict[str, Any], int]:
    """The benchmark's latency workload offered at `rate` lines a second for `seconds`
    (the load generator's `paced` mode, `options` added to its configuration): its report
    and the postings offered."""
    from services.bench import workload

    paced = workload.generate(int(rate * seconds), 300, seed=12, hospital=PACED_HOSPITAL)
    (work / "paced.json").write_bytes(orjson.dumps(paced.postings))
    config = {
        "url": url,
        "postings_file": str(work / "paced.json"),
        "seconds": seconds,
        "hospital_id": PACED_HOSPITAL,
        **options,
    }
    return loadgen("paced", config, work, timeout=seconds + timeout), len(paced.postings)


def post_events(
    url: str, work: Path, events: list[dict[str, Any]], name: str, per_request: int
) -> dict[str, Any]:
    """`events` posted {"events": [...]} `per_request` at a time from 4 clients, as fast as
    ingest answers (the load generator's `post` mode); its report."""
    bodies = [
        orjson.dumps({"events": events[start : start + per_request]})
        for start in range(0, len(events), per_request)
    ]
    (work / f"{name}.jsonl").write_bytes(b"\n".join(bodies))
    config = {"url": url, "batches_file": str(work / f"{name}.jsonl"), "concurrency": 4}
    return loadgen("post", config, work, timeout=900)


def open_lookup_cases(url: str, work: Path, database: Database, count: int) -> None:
    """`count` new cases of LOOKUP_HOSPITAL opened through the API, and in its database."""
    if count:
        post_events(url, work, lookup_admissions(count), "admissions", per_request=500)
        database.wait_for(LOOKUP_HOSPITAL, count, timeout=900)


def admission(
    hospital_id: str,
    case_id: str,
    *,
    event_id: str | None = None,
    at: str = "2026-11-02T08:00:00+00:00",
    admitted_at: str | None = None,
    department: str = "CARDIO",
) -> dict[str, Any]:
    """An `admitted` event of a DRG FM15 case of the employee scheme, admitted `at` unless
    `admitted_at` says otherwise."""
    return {
        "event_id": event_id or f"{case_id}-a",
        "type": "admitted",
        "hospital_id": hospital_id,
        "case_id": case_id,
        "occurred_at": at,
        "department": department,
        "drg_code": "FM15",
        "insurance_scheme": "employee",
        "admitted_at": admitted_at or at,
    }


def charge(
    hospital_id: str,
    case_id: str,
    event_id: str,
    *,
    at: str = "2026-11-03T08:00:00+00:00",
    department: str = "CARDIO",
    item_code: str = "LAB001",
    item_name: str = "Blood panel",
    category: str = "lab",
    quantity: str = "1",
    unit_price: str = "12.50",
    amount: str | None = None,
) -> dict[str, Any]:
    """A `charge` event; its amount `quantity` x `unit_price` unless given."""
    return {
        "event_id": event_id,
        "type": "charge",
        "hospital_id": hospital_id,
        "case_id": case_id,
        "occurred_at": at,
        "department": department,
        "item_code": item_code,
        "item_name": item_name,
        "category": category,
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": amount or str(Decimal(quantity) * Decimal(unit_price)),
    }


def lookup_admissions(count: int) -> list[dict[str, Any]]:
    """Admissions of `count` new cases (L0000000, ...) of LOOKUP_HOSPITAL, as the full path
    opens them for the lookups."""
    return [admission(LOOKUP_HOSPITAL, f"L{number:07d}") for number in range(count)]


def case_events(
    hospital_id: str, case_id: str, count: int, *, items: int = 7
) -> list[dict[str, Any]]:
    """A case's admission and `count` - 1 lab charges (item codes cycling over `items`)."""
    events = [admission(hospital_id, case_id, at="2026-03-02T08:00:00+08:00", department="CARD")]
    events += [
        charge(
            hospital_id,
            case_id,
            f"{case_id}-c{n}",
            at=f"2026-03-02T{9 + n % 12:02d}:00:00+08:00",
            department="CARD",
            item_code=f"LAB{n % items:03d}",
        )
        for n in range(1, count)
    ]
    return events


def folded_state(
    hospital_id: str, case_id: str, events: list[dict[str, Any]], received: datetime
) -> bytes:
    """The case the events make, folded by the cost core (no catalogue), as its changelog
    value."""
    from services.alerting.batch import state_bytes
    from services.casecost.apply import new_case, receive
    from services.casecost.events import parse_event
    from services.casecost.pricing import PriceBook

    state = new_case(hospital_id, case_id)
    for sequence, event in enumerate(events, start=1):
        receive(state, parse_event(event), sequence, PriceBook(), received)
    return state_bytes(state)


@contextlib.contextmanager
def scratch_postgres(name: str) -> Iterator[str]:
    """A new PostgreSQL database `name` on 127.0.0.1:5432 (user postgres), dropped on
    leaving: its SQLAlchemy URL."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def admin(sql: str) -> None:
        engine = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
