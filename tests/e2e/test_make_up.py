"""Run the README's start command as a newcomer would, with the demo, then Ctrl-C."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.up import (
    banner_ports,
    listening,
    processes_mentioning,
    start_up,
    stop_up,
    wait_for_banner,
)

pytestmark = pytest.mark.e2e


def test_make_up_demo_shows_alerts_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    output = tmp_path / "up.out"
    # port 0: drgwatch up picks free ports and prints them
    args = f"--port 0 --broker-port 0 --mllp-port 0 --data-dir {data_dir} --demo"
    up = start_up(["make", "-s", "up", f"ARGS={args}"], output)
    port = broker_port = 0
    try:
        banner = wait_for_banner(up, output)
        port, broker_port = banner_ports(banner)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        # the first address printed is the dashboard's, and it serves the page
        first = re.search(r"drgwatch is up[^\n]*\n\s+dashboard\s+(\S+)", banner)
        assert first and first.group(1) == f"{base}/", banner
        assert '<div id="app">' in httpx.get(first.group(1)).text
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
        stop_up(up)
    text = output.read_text()
    assert "drgwatch: stopped" in text
    assert port and not listening(port) and not listening(broker_port)
    assert processes_mentioning(str(data_dir)) == []
    assert processes_mentioning(f"tcp://127.0.0.1:{broker_port}") == []
