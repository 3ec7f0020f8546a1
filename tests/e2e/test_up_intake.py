"""`drgwatch up` runs the Kafka intake: `drgwatch feed` moves a case, and a killed intake
is started again and takes the next file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.metrics import SUPERVISOR_STATE_FILE, read_supervisor_state
from tests.e2e.up import banner_ports, start_up, stop_up, wait_for_banner

pytestmark = pytest.mark.e2e
DAY = "2026-11-20"


def event(n: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"E2E-{n}",
        "type": kind,
        "hospital_id": "H001",
        "case_id": "V-INTAKE",
        "occurred_at": f"{DAY}T09:{n:02d}:00+08:00",
        **fields,
    }


def charge(n: int, amount: str) -> dict[str, Any]:
    return event(
        n,
        "charge",
        department="CARD",
        item_code="HC01",
        item_name="Stent",
        category="consumable",
        quantity="1",
        unit_price=amount,
        amount=amount,
    )


def feed(drgwatch: Path, path: Path, broker_port: int) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DRGWATCH_")}
    return subprocess.run(
        [str(drgwatch), "feed", str(path), "--bootstrap", f"127.0.0.1:{broker_port}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def total_of(port: int, expected: Decimal) -> Decimal | None:
    url = f"http://127.0.0.1:{port}/v1/hospitals/H001/cases/V-INTAKE"
    deadline = time.monotonic() + 60
    total = None
    while time.monotonic() < deadline:
        response = httpx.get(url, timeout=5)
        if response.status_code == 200:
            total = Decimal(response.json()["total_cost"])
            if total == expected:
                break
        time.sleep(0.25)
    return total


def test_drgwatch_up_takes_a_fed_file_and_restarts_a_killed_intake(tmp_path: Path) -> None:
    drgwatch = Path(sys.executable).with_name("drgwatch")
    data_dir = tmp_path / "var"
    output = tmp_path / "up.out"
    argv = [str(drgwatch), "up", "--port", "0", "--broker-port", "0", "--mllp-port", "0"]
    up = start_up([*argv, "--data-dir", str(data_dir), "--partitions", "2"], output)
    try:
        banner = wait_for_banner(up, output)
        port, broker_port = banner_ports(banner)
        found = re.search(r"Kafka intake\s+topic (\S+), answers on (\S+)", banner)
        assert found and found.groups() == ("drgwatch-intake", "drgwatch-intake-results"), banner
        admitted = event(
            0,
            "admitted",
            department="CARD",
            insurance_scheme="employee",
            drg_code="FM15",
            admitted_at=f"{DAY}T08:00:00+08:00",
        )
        first = tmp_path / "first.ndjson"
        first.write_bytes(b"\n".join(orjson.dumps(e) for e in [admitted, charge(1, "20000.00")]))
        result = feed(drgwatch, first, broker_port)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "accepted 2, duplicate 0, refused 0" in result.stdout, result.stdout
        assert total_of(port, Decimal("20000.00")) == Decimal("20000.00"), output.read_text()

        state = read_supervisor_state(data_dir / SUPERVISOR_STATE_FILE)
        assert state is not None and state["intake"].pid is not None
        os.kill(state["intake"].pid, signal.SIGKILL)
        second = tmp_path / "second.ndjson"
        second.write_bytes(orjson.dumps(charge(2, "22000.00")))
        result = feed(drgwatch, second, broker_port)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "accepted 1, duplicate 0, refused 0" in result.stdout, result.stdout
        assert total_of(port, Decimal("42000.00")) == Decimal("42000.00"), output.read_text()
        assert "drgwatch: the intake exited (signal SIGKILL)" in output.read_text()

        # the restarted intake's own figures, on the port the banner names
        metrics = re.search(r"Kafka intake .*\(metrics (http://\S+/metrics)\)", banner)
        assert metrics, banner
        text = httpx.get(metrics.group(1), timeout=10).text
        assert 'drgwatch_intake_records_total{status="accepted"} 1.0' in text, text
        assert 'drgwatch_intake_events_total{status="accepted"} 1.0' in text, text
        assert re.search(r'^drgwatch_intake_lag\{partition="\d"\} 0\.0$', text, re.M), text
    finally:
        assert stop_up(up) == 0, output.read_text()
