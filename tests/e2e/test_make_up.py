"""Run the README's start command as a newcomer would, with the demo, then Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command:
            found.append(f"{entry.name}: {command}")
    return found


def test_make_up_demo_shows_alerts_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port, broker_port = free_port(), free_port()
    data_dir = tmp_path / "var"
    output = tmp_path / "up.out"
    args = f"--port {port} --broker-port {broker_port} --data-dir {data_dir} --demo"
    with open(output, "wb") as sink:
        up = subprocess.Popen(
            ["make", "-s", "up", f"ARGS={args}"],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while "drgwatch is up" not in output.read_text(errors="replace"):
            assert up.poll() is None, output.read_text(errors="replace")
            assert time.monotonic() < deadline, output.read_text(errors="replace")
            time.sleep(0.5)
        banner = output.read_text()
        assert f"http://127.0.0.1:{port}" in banner and f"127.0.0.1:{broker_port}" in banner
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        group = httpx.get(f"{base}/v1/drg-catalogues/current/groups/FM15").json()
        assert group["weight"] == "3.2973"

        started = time.monotonic()
        alerts: list[dict[str, object]] = []
        while time.monotonic() - started < 60 and len(alerts) < 3:
            alerts = httpx.get(f"{base}/v1/alerts", params={"limit": 100}).json()["items"]
            time.sleep(1)
        print(f"\ndemo: {len(alerts)} alerts after {time.monotonic() - started:.0f}s")
        assert len(alerts) >= 3, "the demo should raise alerts within a minute"
        assert {"blue", "yellow", "red"} & {a["level"] for a in alerts}
        cases = httpx.get(f"{base}/v1/hospitals/H001/cases", params={"limit": 100}).json()
        assert cases["items"] and all(
            case["standard_cost"] for case in cases["items"] if case["level"] != "unpriced"
        )
    finally:
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        up.wait(60)
    text = output.read_text()
    assert "drgwatch: stopped" in text
    assert not _listening(port) and not _listening(broker_port)
    assert _processes_mentioning(str(data_dir)) == []
    assert _processes_mentioning(f"tcp://127.0.0.1:{broker_port}") == []
