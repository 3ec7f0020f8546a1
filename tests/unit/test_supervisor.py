"""The supervisor's decisions (backoff, giving up) and its handling of real child processes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.metrics import read_supervisor_state
from services.stack import _supervised_stack
from services.stopping import supervisor_stop_seconds
from services.supervisor import (
    DEFAULT_SHUTDOWN_SECONDS,
    Child,
    ExitHistory,
    GaveUp,
    RestartPolicy,
    StartFailed,
    Supervisor,
    describe_exit,
    gives_up,
    record_exit,
    restart_delay,
    start_child,
)

POLICY = RestartPolicy()


def exits(*ran_for: float) -> ExitHistory:
    history = ExitHistory()
    for seconds in ran_for:
        history = record_exit(POLICY, history, seconds)
    return history


def test_the_delay_doubles_from_half_a_second_to_thirty_seconds() -> None:
    delays = [restart_delay(POLICY, exits(*[15.0] * n)) for n in range(1, 10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_child_that_ran_a_while_starts_the_backoff_afresh() -> None:
    history = exits(15.0, 15.0, 15.0)
    assert restart_delay(POLICY, history) == 2.0
    settled = record_exit(POLICY, history, 30.0)
    assert settled.attempt == 1 and restart_delay(POLICY, settled) == 0.5


def test_five_exits_in_a_row_each_right_after_the_start_give_up() -> None:
    assert not gives_up(POLICY, exits(1.0, 2.0, 0.1, 9.9))
    assert gives_up(POLICY, exits(1.0, 2.0, 0.1, 9.9, 0.0))


def test_one_longer_run_between_quick_exits_starts_the_count_again() -> None:
    history = exits(1.0, 1.0, 1.0, 1.0, 10.0, 1.0, 1.0, 1.0, 1.0)
    assert history.quick_exits == 4 and not gives_up(POLICY, history)
    # still backing off: 10 s is not long enough to count as settled
    assert history.attempt == 9 and restart_delay(POLICY, history) == 30.0


def test_a_child_killed_by_a_signal_is_described_by_the_signal() -> None:
    assert describe_exit(-9) == "signal SIGKILL"
    assert describe_exit(-15) == "signal SIGTERM"
    assert describe_exit(3) == "code 3"


FAST = RestartPolicy(first_delay=0.05, max_delay=0.2, quick_exit_within=5.0)


def python_child(code: str, log_path: Path) -> subprocess.Popen[bytes]:
    return start_child([sys.executable, "-c", code], {}, log_path)


def sleeping_child(
    name: str, tmp_path: Path, *, bound_to: Child | None = None, runs_alone: bool = False
) -> Child:
    log_path = tmp_path / f"{name}.log"
    return Child(
        name,
        lambda: python_child("import time; time.sleep(60)", log_path),
        log_path,
        bound_to=bound_to,
        runs_alone=runs_alone,
    )


def run_until(supervisor: Supervisor, done: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "supervisor did not get there"
        supervisor.tick()
        time.sleep(0.02)


def test_a_child_failing_at_start_is_given_up_on_with_the_end_of_its_log(tmp_path: Path) -> None:
    log_path = tmp_path / "broken.log"
    code = "import sys; print('cannot read the catalogue'); sys.exit(3)"
    broken = Child("broken", lambda: python_child(code, log_path), log_path)
    lines: list[str] = []
    supervisor = Supervisor(
        [broken], state_file=tmp_path / "state.json", policy=FAST, echo=lines.append
    )
    supervisor.start()
    with pytest.raises(GaveUp) as gave_up:
        run_until(supervisor, lambda: False)
    message = gave_up.value.message
    assert "the broken exited 5 times in a row" in message and "last: code 3" in message
    assert "cannot read the catalogue" in message
    assert broken.restarts == 4
    assert [line.split(";")[1].strip() for line in lines if "exited" in line] == [
        "restart attempt 1 in 0.1 s",
        "restart attempt 2 in 0.1 s",
        "restart attempt 3 in 0.2 s",
        "restart attempt 4 in 0.2 s",
    ]
    supervisor.stop()


def test_a_killed_child_is_restarted_and_its_followers_go_and_come_back_with_it(
    tmp_path: Path,
) -> None:
    broker = sleeping_child("broker", tmp_path)
    worker = sleeping_child("worker", tmp_path, bound_to=broker)
    api = sleeping_child("api", tmp_path, bound_to=broker, runs_alone=True)
    lines: list[str] = []
    state_file = tmp_path / "state.json"
    supervisor = Supervisor([broker, worker, api], state_file=state_file, echo=lines.append)
    try:
        supervisor.start()
        assert broker.running and worker.running and api.running
        first_api = api.process
        assert first_api is not None and broker.process is not None

        broker.process.kill()
        broker.process.wait()
        supervisor.tick()
        # the worker goes with the broker; the API keeps serving until the new broker starts
        assert not broker.running and not worker.running and api.running
        state = read_supervisor_state(state_file)
        assert state is not None and not state["broker"].running
        assert state["broker"].last_exit == "signal SIGKILL"

        run_until(supervisor, lambda: broker.running and worker.running and api.running)
        assert api.process is not first_api, "the API is started again with the broker"
        assert (broker.restarts, worker.restarts, api.restarts) == (1, 1, 1)
        assert lines[0].startswith("the broker exited (signal SIGKILL) after ")
        assert lines[0].endswith("; restart attempt 1 in 0.5 s")
        state = read_supervisor_state(state_file)
        assert state is not None
        assert {name: (c.running, c.restarts) for name, c in state.items()} == {
            "broker": (True, 1),
            "worker": (True, 1),
            "api": (True, 1),
        }
    finally:
        supervisor.stop()
    assert not (broker.running or worker.running or api.running)


def test_a_follower_that_runs_alone_serves_on_while_its_broker_fails_to_start(
    tmp_path: Path,
) -> None:
    broker = sleeping_child("broker", tmp_path)
    first_launch = broker.launch
    starts = {"broker": 0}

    def launch_broker() -> subprocess.Popen[bytes]:
        starts["broker"] += 1
        if starts["broker"] > 1:
            raise StartFailed("port 9092 is already in use")
        return first_launch()

    broker.launch = launch_broker
    api = sleeping_child("api", tmp_path, bound_to=broker, runs_alone=True)
    lines: list[str] = []
    supervisor = Supervisor(
        [broker, api], state_file=tmp_path / "state.json", policy=FAST, echo=lines.append
    )
    try:
        supervisor.start()
        assert broker.process is not None
        broker.process.kill()
        broker.process.wait()
        run_until(supervisor, lambda: starts["broker"] >= 3 and api.running)
        assert any("failed to start: port 9092 is already in use" in line for line in lines)
    finally:
        supervisor.stop()


# installs its SIGTERM handler, says so, then on SIGTERM takes `DRAIN` seconds to finish
DRAINING_CHILD = """
import pathlib, signal, sys, time
def drain(signum, frame):
    time.sleep(float(sys.argv[2]))
    print("drained", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, drain)
pathlib.Path(sys.argv[1]).touch()
time.sleep(120)
"""


def draining_child(tmp_path: Path, drain_seconds: float, stop_timeout: float) -> Child:
    log_path = tmp_path / "worker.log"
    ready = tmp_path / "ready"
    argv = [sys.executable, "-c", DRAINING_CHILD, str(ready), str(drain_seconds)]
    return Child(
        "worker", lambda: start_child(argv, {}, log_path), log_path, stop_timeout=stop_timeout
    )


@pytest.mark.parametrize(
    ("stop_timeout", "exit_code"),
    [
        (supervisor_stop_seconds(2.5), 0),  # its bound and the margin: it finishes
        (0.5, -9),  # less than it needs: SIGKILL
    ],
)
def test_a_child_draining_within_its_bound_is_not_killed(
    tmp_path: Path, stop_timeout: float, exit_code: int
) -> None:
    worker = draining_child(tmp_path, drain_seconds=2.0, stop_timeout=stop_timeout)
    supervisor = Supervisor([worker], state_file=tmp_path / "state.json", echo=lambda _: None)
    supervisor.start()
    process = worker.process
    assert process is not None
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < deadline and process.poll() is None, "the child did not start"
        time.sleep(0.02)
    supervisor.stop()
    assert process.returncode == exit_code
    assert ("drained" in (tmp_path / "worker.log").read_text()) == (exit_code == 0)


def test_the_stack_waits_for_its_children_past_their_own_shutdown_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRGWATCH_SHUTDOWN_SECONDS", "42")
    with socket.socket() as http, socket.socket() as mllp:
        supervisor, settings = _supervised_stack(
            http, mllp, broker_port=1, data_dir=tmp_path, partitions=1, intake_metrics_port=1
        )
    assert settings.shutdown_seconds == 42
    waits = {child.name: child.stop_timeout for child in supervisor.children}
    assert waits["worker"] == waits["api"] == waits["intake"] == supervisor_stop_seconds(42)
    assert supervisor_stop_seconds(42) > 42
    # a child built without a wait of its own still outlasts the default bound
    assert Child("x", lambda: None, tmp_path / "x.log").stop_timeout > DEFAULT_SHUTDOWN_SECONDS  # type: ignore[arg-type,return-value]
