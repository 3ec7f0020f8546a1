"""Keeps the processes of `drgwatch up` running: a child that exits is started again.

The rules (the decisions are the plain functions `record_exit`, `restart_delay` and
`gives_up`):

- a child that exits or is killed is started again after a delay: 0.5 s, doubling with
  each exit in a row up to 30 s; once it has run for 30 s, the next exit starts the
  count again from 0.5 s;
- a child that exits 5 times in a row, each within 10 s of its start, is given up on:
  `tick` raises `GaveUp` naming the child, how it exited and the end of its log, and
  the caller stops everything;
- a child can be bound to another (`bound_to`): it is stopped when that one exits
  (unless it `runs_alone`), stopped before that one is started again, and started
  again after it. `drgwatch up` binds the worker and the API to the broker: the
  embedded broker keeps nothing on disk, so a new one needs its topics created and the
  ledger replayed before any client talks to it (services/stack.py says why each).

Every exit and restart is printed and written to the state file the API's /metrics
and /readyz read (services/metrics.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.errors import DrgwatchError
from services.metrics import ComponentState, write_supervisor_state
from services.settings import CommonSettings
from services.stopping import supervisor_stop_seconds

PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 12
FOLLOWER_STOP_SECONDS = 1.0
# a child's wait after SIGTERM when its caller names none: past the children's default bound
DEFAULT_SHUTDOWN_SECONDS: float = CommonSettings.model_fields["shutdown_seconds"].default
STOP_SECONDS = supervisor_stop_seconds(DEFAULT_SHUTDOWN_SECONDS)


class SupervisionError(DrgwatchError):
    """Base of the supervisor's errors."""


class StartFailed(SupervisionError):
    """A child could not be started (it exited at once, or never became ready)."""


class GaveUp(SupervisionError):
    """A child kept failing right after its start; the stack cannot run."""


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5
    max_delay: float = 30.0
    settled_after: float = 30.0  # a child that ran this long starts the backoff afresh
    quick_exit_within: float = 10.0  # an exit this soon after the start is "at start"
    quick_exits_to_give_up: int = 5  # that many in a row, and the supervisor gives up


@dataclass(frozen=True)
class ExitHistory:
    attempt: int = 0  # exits since the child last ran for `settled_after`
    quick_exits: int = 0  # exits in a row, each within `quick_exit_within` of its start


def record_exit(policy: RestartPolicy, history: ExitHistory, ran_for: float) -> ExitHistory:
    """The history after an exit `ran_for` seconds after the child's start."""
    attempt = 1 if ran_for >= policy.settled_after else history.attempt + 1
    quick_exits = history.quick_exits + 1 if ran_for < policy.quick_exit_within else 0
    return ExitHistory(attempt=attempt, quick_exits=quick_exits)


def restart_delay(policy: RestartPolicy, history: ExitHistory) -> float:
    """Seconds to wait before starting the child again."""
    return min(policy.first_delay * 2.0 ** max(0, history.attempt - 1), policy.max_delay)


def gives_up(policy: RestartPolicy, history: ExitHistory) -> bool:
    return history.quick_exits >= policy.quick_exits_to_give_up


def describe_exit(returncode: int) -> str:
    """ "code 1" or "signal SIGKILL" (Popen gives a signal as a negative code)."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"


def _die_with_parent() -> None:
    """Children get SIGTERM if their parent dies, so nothing is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_child(
    argv: Sequence[str],
    env: dict[str, str],
    log_path: Path,
    *,
    pass_fds: Sequence[int] = (),
    echo: bool = False,
) -> subprocess.Popen[bytes]:
    """A process in a session of its own, its output appended to `log_path` (and, with
    `echo`, copied line by line to this process's standard output)."""
    with open(log_path, "ab") as log_file:  # the child keeps its own copy
        process = subprocess.Popen(
            list(argv),
            env=env,
            stdout=subprocess.PIPE if echo else log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            pass_fds=tuple(pass_fds),
        )
    if echo:
        threading.Thread(
            target=_copy_lines, args=(process, log_path), name=f"echo {log_path.name}", daemon=True
        ).start()
    return process


def _copy_lines(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Each line the child writes, to its log and to the console, until it closes."""
    assert process.stdout is not None
    with open(log_path, "ab") as log_file:
        for line in process.stdout:
            log_file.write(line)
            log_file.flush()
            sys.stdout.write(line.decode("utf-8", "replace"))
            sys.stdout.flush()


def stop_child(process: subprocess.Popen[bytes], timeout: float = STOP_SECONDS) -> None:
    """SIGTERM to the child's process group; SIGKILL if it has not exited by `timeout`."""
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


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a log (read from its end: logs grow across restarts)."""
    try:
        with open(log_path, "rb") as log_file:
            log_file.seek(max(0, log_path.stat().st_size - 16384))
            text = log_file.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


@dataclass(eq=False)
class Child:
    """One supervised process and what the supervisor remembers of it."""

    name: str
    launch: Callable[[], subprocess.Popen[bytes]]  # raises StartFailed
    log_path: Path
    bound_to: Child | None = None
    runs_alone: bool = False  # may run while `bound_to` is down (not across its start)
    # after SIGTERM, until SIGKILL: drgwatch's own processes get their bound and a margin
    stop_timeout: float = STOP_SECONDS
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # monotonic
    started_wall: float | None = None
    starts: int = 0
    history: ExitHistory = field(default_factory=ExitHistory)
    last_exit: str | None = None
    due_at: float | None = None  # monotonic moment to start it (again); None: not now

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)

    def state(self) -> ComponentState:
        running = self.running
        return ComponentState(
            pid=self.process.pid if running and self.process is not None else None,
            running=running,
            started_at=self.started_wall,
            restarts=self.restarts,
            last_exit=self.last_exit,
        )


class Supervisor:
    """Starts the children in order, restarts them as the module docstring says."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        state_file: Path,
        policy: RestartPolicy | None = None,
        echo: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.children = list(children)
        self.state_file = state_file
        self.policy = policy or RestartPolicy()
        self.echo = echo
        self.clock = clock

    def start(self) -> None:
        """Start every child, in the order given (a bound child after its own)."""
        now = self.clock()
        for child in self.children:
            child.due_at = now
        self.tick()

    def tick(self) -> None:
        """Notice exits and start whatever is due; raises GaveUp."""
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                self._exited(child, describe_exit(child.process.returncode))
        for child in self.children:
            if child.due_at is not None and self.clock() >= child.due_at and self._may_start(child):
                self._start(child)

    def stop(self) -> None:
        """Stop every child, the last started first."""
        for child in reversed(self.children):
            child.due_at = None
            self._stop(child)
        self._save()

    def _may_start(self, child: Child) -> bool:
        bound = child.bound_to
        return bound is None or bound.running or (child.runs_alone and child.starts > 0)

    def _start(self, child: Child) -> None:
        child.due_at = None
        followers = self._bound_to(child)
        for follower in followers:
            if follower.running:
                self.echo(f"stopping the {follower.name} while the {child.name} starts")
                self._stop(follower)
        child.starts += 1
        if child.starts > 1:
            self.echo(f"starting the {child.name} again (restart {child.restarts})")
        child.started_at = self.clock()
        child.started_wall = time.time()
        try:
            child.process = child.launch()
        except StartFailed as failure:
            child.process = None
            self._exited(child, f"failed to start: {failure.message}")
            for follower in followers:  # back to serving what it can until the next try
                if follower.runs_alone and follower.starts > 0:
                    follower.due_at = self.clock()
            return
        self._save()
        for follower in followers:
            if not follower.running:
                follower.due_at = self.clock()

    def _exited(self, child: Child, how: str) -> None:
        ran_for = self.clock() - child.started_at
        child.process = None
        child.last_exit = how
        child.history = record_exit(self.policy, child.history, ran_for)
        if gives_up(self.policy, child.history):
            self._save()
            tail = "\n".join(f"    {line}" for line in log_tail(child.log_path))
            raise GaveUp(
                f"the {child.name} exited {child.history.quick_exits} times in a row, each"
                f" within {self.policy.quick_exit_within:.0f} s of its start (last: {how});"
                f" the end of {child.log_path}:\n{tail}"
            )
        delay = restart_delay(self.policy, child.history)
        child.due_at = self.clock() + delay
        self._save()
        self.echo(
            f"the {child.name} exited ({how}) after {ran_for:.1f} s;"
            f" restart attempt {child.history.attempt} in {delay:.1f} s"
        )
        for follower in self._bound_to(child):
            if follower.running and not follower.runs_alone:
                self.echo(f"stopping the {follower.name} too: it goes with the {child.name}")
                # no grace: what it holds went with the other, and it may hang on it
                self._stop(follower, timeout=FOLLOWER_STOP_SECONDS)

    def _stop(self, child: Child, timeout: float | None = None) -> None:
        if child.process is not None:
            stop_child(child.process, child.stop_timeout if timeout is None else timeout)
            child.process = None
            self._save()

    def _bound_to(self, child: Child) -> list[Child]:
        return [other for other in self.children if other.bound_to is child]

    def _save(self) -> None:
        components = {child.name: child.state() for child in self.children}
        with contextlib.suppress(OSError):  # the state is for display; never stop for it
            write_supervisor_state(
                self.state_file, supervisor_pid=os.getpid(), components=components
            )
