"""The compose file, run as far as it can be without Docker.

The static checks: every `drgwatch` command a service runs parses with the real command
line, every DRGWATCH_* variable a service gets is in the README's settings reference,
the secrets are required and the images pinned.

The run: the drgwatch services start as local processes with exactly the environment
the compose file gives them (its `${...}` interpolated as Compose would), changed only
where one machine differs from the compose network:

- the three Kafka brokers are one embedded tansu broker, so replication and
  min.insync.replicas become 1 (tansu keeps one copy whatever is asked);
- `postgres:5432` is this test's own PostgreSQL database;
- a port each container has to itself (8000, 9464) becomes a spare one, and 0.0.0.0
  becomes 127.0.0.1 (nothing here listens beyond loopback); the workers' Faust web
  server is off, as its address is not a setting (0.0.0.0 in production mode);
- /var/lib/drgwatch (the image's volume) is a directory of each process's own.

Then the init must finish, both APIs answer /readyz, both workers hold partitions of
the one group, the intake serves its metrics, and an event posted to one API is read
back from the other. Where HAProxy is installed, deploy/haproxy/haproxy.cfg (on loopback
ports) serves the case too, and goes on serving it from the other API once one stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.ports import on_a_free_port, spare_port
from services.stack import start_broker
from services.supervisor import start_child, stop_child
from tests.deploy.test_deploy_files import COMPOSE_FILE, DRGWATCH_SERVICES, as_argv, load_yaml_docs
from tests.deploy.test_settings_reference import readme_table

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
SECRETS = {
    "POSTGRES_PASSWORD": "rehearsal-password",
    "DRGWATCH_API_KEYS": "k" + uuid.uuid4().hex + uuid.uuid4().hex,
    "GRAFANA_ADMIN_PASSWORD": "rehearsal-password",
}
VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, host: dict[str, str]) -> str:
    """`${NAME}`, `${NAME:-default}`, `${NAME:?message}` and `$$`, as Compose reads them."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, word = match.group(1), match.group(2), match.group(3)
        present = host.get(name)
        empty = present is None or (present == "" and operator and operator.startswith(":"))
        if operator and operator.endswith("?") and empty:
            raise KeyError(f"{name}: {word}")
        if operator and operator.endswith("-") and empty:
            return word
        return present or ""

    return VARIABLE.sub(one, value)


def compose_services(host: dict[str, str]) -> dict[str, dict[str, Any]]:
    (compose,) = load_yaml_docs(COMPOSE_FILE)
    services: dict[str, dict[str, Any]] = compose["services"]
    for service in services.values():
        env = service.get("environment") or {}
        service["environment"] = {
            str(key): interpolate("" if value is None else str(value), host)
            for key, value in env.items()
        }
    return services


def command_line(service: dict[str, Any]) -> list[str]:
    """What the container runs: its entrypoint (the image's is `drgwatch`) and command."""
    entrypoint = as_argv(service.get("entrypoint")) or ["drgwatch"]
    return entrypoint + as_argv(service.get("command"))


def drgwatch_invocations(argv: list[str]) -> list[list[str]]:
    """The `drgwatch` command lines in an argv, including those in a `sh -c` script."""
    if argv[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        script = " ".join(argv[2:])
        return [
            shlex.split(part)[1:]
            for part in re.split(r"&&|\|\||;", script)
            if shlex.split(part)[:1] == ["drgwatch"]
        ]
    return [argv[1:]] if argv[:1] == ["drgwatch"] else []


# ------------------------------------------------------------------------- static


def test_compose_refuses_to_start_without_its_secrets() -> None:
    for name in SECRETS:
        with pytest.raises(KeyError, match=name):
            compose_services({k: v for k, v in SECRETS.items() if k != name})
    assert compose_services(SECRETS)["intake"]["environment"]["DRGWATCH_INTAKE_HOSPITALS"] == "*"


def test_every_drgwatch_command_in_compose_exists_in_the_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.cli import main

    invocations = [
        args
        for name in DRGWATCH_SERVICES
        for args in drgwatch_invocations(command_line(compose_services(SECRETS)[name]))
    ]
    assert ["topics", "ensure"] in invocations and ["worker"] in invocations
    for args in invocations:
        # --help stops after parsing: an unknown command or option exits 2, not 0
        with pytest.raises(SystemExit) as stopped:
            main([*args, "--help"])
        assert stopped.value.code == 0, f"drgwatch {' '.join(args)}: {capsys.readouterr().err}"
    with pytest.raises(SystemExit) as stopped:
        main(["topics", "rebuild", "--help"])
    assert stopped.value.code == 2  # the check itself can fail


def test_every_drgwatch_variable_in_compose_and_k8s_is_in_the_settings_reference() -> None:
    listed = {row.variable for row in readme_table()}
    used: dict[str, str] = {}
    for name, service in compose_services(SECRETS).items():
        for key in service["environment"]:
            if key.startswith("DRGWATCH_"):
                used.setdefault(key, f"docker-compose.yml {name}")
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for key in re.findall(r"\b(DRGWATCH_[A-Z0-9_]+)\b", path.read_text(encoding="utf-8")):
            used.setdefault(key, f"deploy/k8s/{path.name}")
    missing = sorted(f"{key} ({where})" for key, where in used.items() if key not in listed)
    assert not missing, f"not in the README settings reference: {', '.join(missing)}"


def test_images_are_pinned() -> None:
    for name, service in compose_services(SECRETS).items():
        image = str(service.get("image", ""))
        assert image, f"{name} has no image"
        if "build" in service:
            continue
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


# --------------------------------------------------------------------------- run


def local_environment(
    service: dict[str, Any], *, bootstrap: str, database_url: str, data_dir: Path
) -> dict[str, str]:
    """The service's compose environment, with the one-machine changes of the docstring."""
    env = {
        "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HOME": str(data_dir),
        "PYTHONUNBUFFERED": "1",  # the image's
    }
    for key, value in service["environment"].items():
        env[key] = "127.0.0.1" if value == "0.0.0.0" else value
    if "DRGWATCH_KAFKA_BOOTSTRAP" in env:
        brokers = env["DRGWATCH_KAFKA_BOOTSTRAP"].split(",")
        assert len(brokers) == 3
        env["DRGWATCH_KAFKA_BOOTSTRAP"] = bootstrap
        env["DRGWATCH_TOPIC_REPLICATION"] = "1"
        env["DRGWATCH_TOPIC_MIN_INSYNC_REPLICAS"] = "1"
    if "DRGWATCH_DATABASE_URL" in env:
        assert "@postgres:5432/" in env["DRGWATCH_DATABASE_URL"]
        env["DRGWATCH_DATABASE_URL"] = database_url
    if env.get("DRGWATCH_WEB_ENABLED") == "true":
        env["DRGWATCH_WEB_ENABLED"] = "false"
    if "DRGWATCH_INTAKE_METRICS_PORT" in env:
        env["DRGWATCH_INTAKE_METRICS_PORT"] = str(spare_port())
    env["DRGWATCH_DATA_DIR"] = str(data_dir)
    return env


def local_argv(service: dict[str, Any]) -> tuple[list[str], int | None]:
    """The command line with a spare port for `--port` (and loopback for 0.0.0.0)."""
    argv = ["127.0.0.1" if arg == "0.0.0.0" else arg for arg in command_line(service)]
    port = None
    if "--port" in argv:
        port = spare_port()
        argv[argv.index("--port") + 1] = str(port)
    if argv[0] == "drgwatch":
        argv[0] = str(BIN / "drgwatch")
    return argv, port


def local_proxy_config(config: str, port: int, api_ports: dict[str, int]) -> str:
    """deploy/haproxy/haproxy.cfg on loopback: its own port, the APIs' spare ports, and
    no Docker DNS (the addresses are IPs)."""
    config = re.sub(r"^(\s*)bind\s+:8000\s*$", rf"\1bind 127.0.0.1:{port}", config, flags=re.M)
    for name, api_port in api_ports.items():
        config, count = re.subn(
            rf"^(\s*server\s+{name}\s+){name}:8000",
            rf"\g<1>127.0.0.1:{api_port}",
            config,
            flags=re.M,
        )
        assert count == 1, name
    config = config.replace(" resolvers docker", "")
    return config.split("resolvers docker")[0]


async def worker_partitions(database_url: str) -> list[tuple[bool, int]]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch("SELECT ready, partitions FROM worker_heartbeats")
    finally:
        await connection.close()
    return [(bool(row["ready"]), int(row["partitions"])) for row in rows]


def wait_for(what: str, check: Any, timeout: float, processes: dict[str, Any]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited ({process.returncode})"
        with contextlib.suppress(httpx.HTTPError, OSError, asyncpg.PostgresError):
            result = check()
            if result:
                return result
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.fixture
def processes() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        yield started
    finally:
        for process in started.values():
            stop_child(process)


@pytest.mark.integration
def test_the_compose_services_start_with_their_environment_and_share_the_work(
    tmp_path: Path, own_postgres_url: str, processes: dict[str, subprocess.Popen[bytes]]
) -> None:
    services = compose_services(SECRETS)
    port, broker = on_a_free_port(lambda port: start_broker(port, tmp_path / "broker.log"))
    processes["broker"] = broker
    bootstrap = f"127.0.0.1:{port}"

    def prepared(name: str) -> tuple[list[str], dict[str, str], int | None]:
        data_dir = tmp_path / name
        data_dir.mkdir()
        env = local_environment(
            services[name], bootstrap=bootstrap, database_url=own_postgres_url, data_dir=data_dir
        )
        argv, http_port = local_argv(services[name])
        return argv, env, http_port

    argv, env, _ = prepared("init")
    init = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert init.returncode == 0, init.stdout + init.stderr
    assert init.stdout.count(": created") == 6, init.stdout

    ports: dict[str, int] = {}
    metrics_port = 0
    for name in ("worker-1", "worker-2", "api-1", "api-2", "intake"):
        argv, env, http_port = prepared(name)
        if http_port is not None:
            ports[name] = http_port
        if "DRGWATCH_INTAKE_METRICS_PORT" in env:
            metrics_port = int(env["DRGWATCH_INTAKE_METRICS_PORT"])
        processes[name] = start_child(argv, env, tmp_path / f"{name}.log")
    assert set(ports) == {"api-1", "api-2"} and metrics_port

    def both_workers_hold_partitions() -> list[tuple[bool, int]] | None:
        beats = asyncio.run(worker_partitions(own_postgres_url))
        ready = [partitions for is_ready, partitions in beats if is_ready]
        return beats if len(ready) == 2 and all(ready) else None

    beats = wait_for(
        "two ready workers with partitions each", both_workers_hold_partitions, 150, processes
    )
    assert len(beats) == 2, beats

    def ready(http_port: int) -> bool:
        return httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=5).status_code == 200

    for name, http_port in ports.items():
        wait_for(f"{name} ready", lambda http_port=http_port: ready(http_port), 60, processes)
    wait_for(
        "intake metrics",
        lambda: httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 200,
        60,
        processes,
    )

    # through one API in, out of the other: the ledger, the events topic, a worker, the
    # changelog and the projector in between
    key = {"Authorization": f"Bearer {SECRETS['DRGWATCH_API_KEYS']}"}
    now = datetime.now(UTC).isoformat()
    event = {
        "event_id": "compose-1",
        "type": "admitted",
        "hospital_id": "H1",
        "case_id": "C1",
        "occurred_at": now,
        "department": "CARD",
        "insurance_scheme": "employee",
        "admitted_at": now,
    }
    posted = httpx.post(
        f"http://127.0.0.1:{ports['api-1']}/v1/events", json=event, headers=key, timeout=30
    )
    assert posted.status_code == 202, posted.text

    def case_on_api_2() -> dict[str, Any] | None:
        answer = httpx.get(
            f"http://127.0.0.1:{ports['api-2']}/v1/hospitals/H1/cases/C1", headers=key, timeout=5
        )
        return answer.json() if answer.status_code == 200 else None

    case = wait_for("the case on api-2", case_on_api_2, 60, processes)
    assert (case["department"], case["status"], case["events_applied"]) == ("CARD", "open", 1)

    # the entry point, when HAProxy is installed here (the compose file uses its image)
    if shutil.which("haproxy") is None:
        return
    proxy_port = spare_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(local_proxy_config(PROXY_CONFIG.read_text(), proxy_port, ports))
    processes["proxy"] = start_child(
        ["haproxy", "-db", "-f", str(config)],
        {"PATH": "/usr/sbin:/usr/bin:/bin"},
        tmp_path / "proxy.log",
    )
    through_proxy = f"http://127.0.0.1:{proxy_port}/v1/hospitals/H1/cases/C1"
    answer = wait_for(
        "the case through the proxy",
        lambda: httpx.get(through_proxy, headers=key, timeout=5).status_code == 200,
        30,
        processes,
    )
    assert answer
    # both APIs serve behind it: with one stopped, the other still answers
    stop_child(processes.pop("api-1"))
    assert wait_for(
        "the case through the proxy without api-1 (once its checks fail)",
        lambda: all(
            httpx.get(through_proxy, headers=key, timeout=5).status_code == 200 for _ in range(4)
        ),
        45,
        processes,
    )
