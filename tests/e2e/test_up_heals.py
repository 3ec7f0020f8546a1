"""`drgwatch up` heals itself: the worker, the API and the broker SIGKILLed in turn.

The stack is started as a user starts it (its own data directory, the default SQLite
database, free ports) while hospital systems post a generated stream of events
continuously, retrying with the same event ids on connection errors and 503 (a retry
is safe). One component at a time is SIGKILLed; after each kill the test waits until
the stack says it is ready again and a fresh event is visible in its case. At the end
every case (total, cost by category, level, DRG, standard, event count) and every alert
must equal the independent recount of tests/faults/workload.py, the restarts must show
in /metrics and in the output, and Ctrl-C must still stop everything. And a component
that cannot start at all makes `drgwatch up` give up, saying which one and why.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.metrics import SUPERVISOR_STATE_FILE, ComponentState, read_supervisor_state
from tests.e2e.up import (
    banner_ports,
    listening,
    processes_mentioning,
    start_up,
    stop_up,
    wait_for_banner,
)
from tests.faults.test_fault_injection import finish, prepare, probe
from tests.integration.harness import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

PARTITIONS = 4
CASES = 50  # about 3,300 events: posting lasts through the three kills
EVENTS_PER_SECOND = 40.0
HEAL_TIMEOUT = 120.0
# SIGKILLed in this order; then each component's expected restarts: the broker's
# restart takes the worker and the API with it (see services/stack.py)
KILLS = ("worker", "api", "broker")
RESTARTS = {"worker": 2, "api": 2, "broker": 1, "intake": 1}  # the intake with the broker


def components(data_dir: Path) -> dict[str, ComponentState]:
    state = read_supervisor_state(data_dir / SUPERVISOR_STATE_FILE)
    assert state is not None, "drgwatch up keeps its state file while it runs"
    return state


def wait_until(check: object, what: str, timeout: float = HEAL_TIMEOUT) -> float:
    """Poll until check() is true; the seconds it took."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def restarts_in_metrics(url: str) -> dict[str, int]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    line = r'^drgwatch_component_restarts_total\{component="(\w+)"\} (\S+)$'
    found = re.findall(line, text, re.M)
    return {component: int(float(count)) for component, count in found}


def drgwatch_up(data_dir: Path) -> list[str]:
    drgwatch = Path(sys.executable).with_name("drgwatch")
    return [str(drgwatch), "up", "--port", "0", "--broker-port", "0", "--mllp-port", "0"] + [
        "--data-dir",
        str(data_dir),
        "--partitions",
        str(PARTITIONS),
    ]


def test_drgwatch_up_heals_a_killed_worker_api_and_broker(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    output = tmp_path / "up.out"
    up = start_up(drgwatch_up(data_dir), output)
    port = broker_port = 0
    try:
        port, broker_port = banner_ports(wait_for_banner(up, output))
        # the harness's client side only: the stack is the one drgwatch up runs
        stack = Stack(
            workdir=data_dir / "logs",
            database_url="",
            partitions=PARTITIONS,
            api_port=port,
            broker_port=broker_port,
        )
        run = prepare(
            stack, seed=401, cases=CASES, min_events=3000, events_per_second=EVENTS_PER_SECOND
        )
        run.driver.start()
        for number, component in enumerate(KILLS, start=1):
            run.driver.wait_for_progress(number / (len(KILLS) + 1))
            at = run.driver.progress
            before = components(data_dir)[component]
            assert before.running and before.pid is not None
            killed = time.monotonic()
            os.kill(before.pid, signal.SIGKILL)
            # the supervisor notices, then the stack says it is ready again
            wait_until(
                lambda c=component, b=before: (
                    components(data_dir)[c].restarts > b.restarts
                    and components(data_dir)[c].running
                ),
                f"the {component} started again",
            )
            wait_until(lambda: ready(stack.url), "ready again")
            ready_after = time.monotonic() - killed
            probe(run)
            visible_after = time.monotonic() - killed
            run.figures[f"{component} SIGKILL"] = (
                f"at {at:.0%} posted: ready again {ready_after:.1f} s after the kill,"
                f" fresh events visible on every partition {visible_after:.1f} s after it"
            )
        run.figures["hospital systems"] = (
            f"slowest answer to a posting {run.driver.stats.slowest_answer:.1f} s"
            " (from its first attempt, retries included)"
        )
        finish(run, "6. drgwatch up heals itself: worker, API and broker SIGKILLed in turn")

        assert restarts_in_metrics(stack.url) == RESTARTS
        text = output.read_text()
        for component in KILLS:
            assert f"drgwatch: the {component} exited (signal SIGKILL)" in text, text
        restored = r"restoring the fresh broker: [1-9]\d* case snapshots written to the new"
        assert re.search(restored, text), text
    finally:
        code = stop_up(up)
    text = output.read_text()
    assert code == 0 and "drgwatch: stopped" in text, text
    assert port and not listening(port) and not listening(broker_port)
    assert processes_mentioning(str(data_dir)) == []
    assert processes_mentioning(f"tcp://127.0.0.1:{broker_port}") == []


def test_a_component_failing_at_every_start_makes_drgwatch_up_give_up_and_say_why(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "var"
    output = tmp_path / "up.out"
    # a setting the worker refuses: it exits at once, every time
    up = start_up(drgwatch_up(data_dir), output, {"DRGWATCH_BATCH_MAX_EVENTS": "0"})
    try:
        code = up.wait(120)
    finally:
        if up.poll() is None:
            stop_up(up)
    text = output.read_text()
    assert code == 1, text
    assert "drgwatch: giving up: the worker exited 5 times in a row, each within 10 s" in text
    assert "batch_max_events" in text, "the end of the worker's log says why"
    assert [line for line in text.splitlines() if "restart attempt" in line][-1].endswith(
        "restart attempt 4 in 4.0 s"
    ), text
    assert "drgwatch is up" not in text and "drgwatch: stopped" in text
    assert processes_mentioning(str(data_dir)) == []
