"""Run the real stack for tests: tansu broker, Faust worker and API as processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from services.alerting.restore import restore_from_snapshots
from services.alerting.settings import worker_tables_dir
from services.casecost.state import state_data
from services.ports import listening_socket, on_a_free_port
from services.settings import CommonSettings
from services.stack import prepare_database, start_broker
from services.storage.engine import make_engine, session_factory
from services.storage.seal import load_seal
from services.supervisor import start_child, stop_child
from services.topics import create_topics
from services.wire import EventSeal

# departments' paces judged every half second, from the first day of a period and the
# first discharged case, so that a test on any date sees them
NO_RULES = Path(__file__).resolve().parents[1] / "fixtures" / "no-rules.yaml"
TARGET_WATCH = {
    "DRGWATCH_TARGET_CHECK_SECONDS": "0.5",
    "DRGWATCH_TARGET_WATCH_MONTH_FROM_DAY": "1",
    "DRGWATCH_TARGET_WATCH_YEAR_FROM_DAY": "1",
    "DRGWATCH_TARGET_WATCH_MIN_CASES": "1",
}


@dataclass
class Stack:
    """A running drgwatch: each part can be killed and started again.

    Ports cannot collide (services/ports.py): the API is handed a socket the harness
    holds for the stack's whole life, and the broker gets a spare port outside the
    ephemeral range when it first starts (another one if that was taken), then keeps it.
    With `api_port` given, the Stack only talks to a stack started elsewhere. With `mllp`,
    the API process also takes HL7 v2 over MLLP on a socket the harness holds likewise
    (`mllp_port`), as `drgwatch up` hands it one.
    """

    workdir: Path
    database_url: str
    partitions: int = 4
    broker_port: int = 0
    api_port: int = 0
    api_socket: socket.socket | None = None
    mllp: bool = False
    mllp_port: int = 0
    mllp_socket: socket.socket | None = None
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    broker: subprocess.Popen[bytes] | None = None
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    intake: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. faster webhook retries

    def __post_init__(self) -> None:
        if self.api_port == 0:
            self.api_socket = listening_socket()
            self.api_port = int(self.api_socket.getsockname()[1])
        if self.mllp:
            self.mllp_socket = listening_socket()
            self.mllp_port = int(self.mllp_socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def settings(self) -> CommonSettings:
        return CommonSettings(
            database_url=self.database_url,
            kafka_bootstrap=f"127.0.0.1:{self.broker_port}",
            topic_prefix=self.prefix,
            topic_partitions=self.partitions,
            data_dir=self.workdir,
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DRGWATCH_MODE="embedded",
            DRGWATCH_DATABASE_URL=self.database_url,
            DRGWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{self.broker_port}",
            DRGWATCH_TOPIC_PREFIX=self.prefix,
            DRGWATCH_TOPIC_PARTITIONS=str(self.partitions),
            DRGWATCH_DATA_DIR=str(self.workdir),
            DRGWATCH_WORKER_LOG_LEVEL="INFO",
            DRGWATCH_RULES_DIR=str(NO_RULES),
        )
        env.update(self.extra_env)
        return env

    def start_broker(self, *, replay: bool, from_snapshots: bool = False) -> int:
        """Start the broker and create topics; with replay, queue the whole ledger again;
        with from_snapshots, restore as `drgwatch up` does (the case snapshots into the
        changelog, the ledger's tail queued). Returns how many ledger entries were queued."""
        log_path = self.workdir / "broker.log"
        if self.broker_port == 0:
            self.broker_port, self.broker = on_a_free_port(
                lambda port: start_broker(port, log_path)
            )
        else:  # a restart: the API and workers know this port
            self.broker = start_broker(self.broker_port, log_path)
            # as `drgwatch up` does: the workers' local tables were of the lost changelog
            shutil.rmtree(worker_tables_dir(self.workdir), ignore_errors=True)
        asyncio.run(create_topics(self.settings))
        if from_snapshots:
            asyncio.run(prepare_database(self.settings, replay_ledger=False))
            return asyncio.run(restore_from_snapshots(self.settings)).replayed
        return asyncio.run(prepare_database(self.settings, replay_ledger=replay))

    async def _empty_rule_registry(self) -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(self.database_url))
        try:
            await connection.execute(
                "TRUNCATE rule_versions, rule_heads, rule_switches RESTART IDENTITY"
            )
        finally:
            await connection.close()

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start one more worker; workers share the partitions of the events topic."""
        worker = start_child(
            [sys.executable, "-m", "services.cli", "worker"],
            self.env(),
            self.workdir / f"worker{len(self.workers)}.log",
        )
        self.workers.append(worker)
        return worker

    def start_api(self) -> None:
        assert self.api_socket is not None, "this Stack only talks to a stack started elsewhere"
        fd = self.api_socket.fileno()
        argv = [sys.executable, "-m", "services.cli", "api", "--fd", str(fd)]
        fds = [fd]
        if self.mllp_socket is not None:
            argv += ["--mllp-fd", str(self.mllp_socket.fileno())]
            fds.append(self.mllp_socket.fileno())
        self.api = start_child(argv, self.env(), self.workdir / "api.log", pass_fds=fds)

    def start_intake(self) -> subprocess.Popen[bytes]:
        """Start the Kafka intake (`drgwatch intake`); it joins its group by itself."""
        self.intake = start_child(
            [sys.executable, "-m", "services.cli", "intake"],
            self.env(),
            self.workdir / "intake.log",
        )
        return self.intake

    def start(self) -> None:
        self.start_broker(replay=False)
        # stacks share the session's database: each starts with its own rules alone
        # (DRGWATCH_RULES_DIR), not with those an earlier test left in the rule registry
        # (a stack on SQLite has a new file of its own)
        if self.database_url.startswith("postgresql"):
            asyncio.run(self._empty_rule_registry())
        self.start_worker()
        self.start_api()
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"stack not ready in {timeout}s; logs in {self.workdir}")

    @staticmethod
    def kill(process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for process in [self.api, self.intake, *self.workers, self.broker]:
            if process is not None:
                stop_child(process, timeout=5)
        for listener in (self.api_socket, self.mllp_socket):
            if listener is not None:
                listener.close()

    def post(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/v1/events", json={"events": events}, timeout=30)
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def case(self, hospital_id: str, case_id: str) -> dict[str, Any] | None:
        response = httpx.get(f"{self.url}/v1/hospitals/{hospital_id}/cases/{case_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def all_alerts(self, **params: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
            page = httpx.get(f"{self.url}/v1/alerts", params=query, timeout=10).json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return items

    def alerts_in_order(self, **params: str) -> list[dict[str, Any]]:
        """Alerts oldest first, in the order they were recorded (the API lists newest
        first; alerts raised by one batch share `raised_at`, so that cannot order them)."""
        return list(reversed(self.all_alerts(**params)))

    def wait_for(self, check: Any, timeout: float = 30, interval: float = 0.1) -> float:
        """Poll until check() is truthy; return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check():
                return time.monotonic() - started
            time.sleep(interval)
        raise AssertionError(f"condition not met within {timeout}s; logs in {self.workdir}")

    def cases(self, hospital_id: str) -> dict[str, dict[str, Any]]:
        """Every case of a hospital, by case id, through the paginated list."""
        found: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            query = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            response = httpx.get(
                f"{self.url}/v1/hospitals/{hospital_id}/cases", params=query, timeout=10
            )
            response.raise_for_status()
            page = response.json()
            found.update({case["case_id"]: case for case in page["items"]})
            cursor = page["next_cursor"]
            if not cursor:
                return found

    def partition_of(self, hospital_id: str, case_id: str) -> int:
        """The events-topic partition a case's events go to (Kafka's default partitioner)."""
        partitions = list(range(self.partitions))
        key = f"{hospital_id}/{case_id}".encode()
        return int(DefaultPartitioner()(key, partitions, partitions))

    def seal(self) -> EventSeal:
        """The events topic's seal with the key in the stack's database, as the API and
        the worker read it: for a test that stands in for the ledger's publisher."""

        async def read() -> EventSeal:
            engine = make_engine(self.database_url)
            try:
                return await load_seal(session_factory(engine))
            finally:
                await engine.dispose()

        return asyncio.run(read())

    def query(self, sql: str, *args: Any) -> list[Any]:
        """The rows a query returns from the stack's PostgreSQL database (asyncpg records)."""

        async def read() -> list[Any]:
            connection = await asyncpg.connect(_asyncpg_dsn(self.database_url))
            try:
                return list(await connection.fetch(sql, *args))
            finally:
                await connection.close()

        return asyncio.run(read())

    def heartbeats(self, fresh_seconds: float = 3.0) -> dict[int, int]:
        """Workers that reported in the last seconds: process id -> partitions held."""

        async def read() -> list[Any]:
            connection = await asyncpg.connect(_asyncpg_dsn(self.database_url))
            try:
                return list(
                    await connection.fetch(
                        "SELECT worker_id, partitions FROM worker_heartbeats WHERE ready"
                        " AND updated_at > now() - make_interval(secs => $1)",
                        fresh_seconds,
                    )
                )
            finally:
                await connection.close()

        return {
            int(row["worker_id"].rsplit(":", 1)[1]): row["partitions"]
            for row in asyncio.run(read())
        }

    def changelog_history(self, hospital_id: str, case_id: str) -> list[dict[str, Any]]:
        """Every state of a case the worker wrote to the changelog, oldest first (diagnosis)."""
        wanted = f"{hospital_id}/{case_id}".encode()

        async def read() -> list[dict[str, Any]]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=f"127.0.0.1:{self.broker_port}",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await consumer.start()
            try:
                topic = self.settings.case_changelog_topic
                consumer.assign([TopicPartition(topic, p) for p in range(self.partitions)])
                found: list[dict[str, Any]] = []
                while batches := await consumer.getmany(timeout_ms=1000):
                    for tp, records in batches.items():
                        for record in records:
                            if record.key == wanted and record.value is not None:
                                state = state_data(record.value)
                                found.append(
                                    {
                                        "offset": f"{tp.partition}:{record.offset}",
                                        "events_applied": state["events_applied"],
                                        "next_sequence": state.get("next_sequence"),
                                        "held": sorted(int(n) for n in state.get("held", {})),
                                        "total_cost": state["total_cost"],
                                    }
                                )
                return found
            finally:
                await consumer.stop()

        return asyncio.run(read())

    def changelog_states(self) -> dict[str, dict[str, Any]]:
        """The latest state of every case in the changelog, by case key."""

        async def read() -> dict[str, dict[str, Any]]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=f"127.0.0.1:{self.broker_port}",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await consumer.start()
            try:
                topic = self.settings.case_changelog_topic
                consumer.assign([TopicPartition(topic, p) for p in range(self.partitions)])
                found: dict[str, dict[str, Any]] = {}
                while batches := await consumer.getmany(timeout_ms=1000):
                    for records in batches.values():
                        for record in records:
                            if record.key and record.value is not None:
                                found[record.key.decode()] = state_data(record.value)
                return found
            finally:
                await consumer.stop()

        return asyncio.run(read())

    def set_database_available(self, available: bool) -> None:
        """Make the stack's PostgreSQL database refuse connections (and drop open ones), or not."""
        name = self.database_url.rsplit("/", 1)[1]

        async def toggle() -> None:
            connection = await asyncpg.connect(_asyncpg_dsn(self.database_url, database="postgres"))
            try:
                await connection.execute(
                    f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(available).lower()}'
                )
                if not available:
                    await connection.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = $1 AND pid <> pg_backend_pid()",
                        name,
                    )
            finally:
                await connection.close()

        asyncio.run(toggle())


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    *,
    mllp: bool = False,
) -> Iterator[Stack]:
    """A started stack (broker, one worker, API; with `mllp`, the API's MLLP listener
    too), stopped afterwards whatever happens."""
    stack = Stack(workdir=workdir, database_url=database_url, extra_env=extra_env or {}, mllp=mllp)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    return dsn if database is None else f"{dsn.rsplit('/', 1)[0]}/{database}"
