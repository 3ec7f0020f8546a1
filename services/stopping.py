"""A stopping process's bound: it exits when its stop outlasts DRGWATCH_SHUTDOWN_SECONDS."""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

EX_OVERDUE = 75  # a stop that outlasted its bound (EX_TEMPFAIL)
# what a supervisor allows a child beyond the child's own bound: the bound's timer fires,
# then the process logs, flushes and exits, which takes a moment more
SUPERVISOR_MARGIN_SECONDS = 5.0


def supervisor_stop_seconds(shutdown_seconds: float) -> float:
    """How long a supervisor waits after SIGTERM before SIGKILL: the child's own bound
    (DRGWATCH_SHUTDOWN_SECONDS) and a margin, so a child still draining within its bound
    is never killed."""
    return shutdown_seconds + SUPERVISOR_MARGIN_SECONDS


def exit_unless_stopped_within(seconds: float, process: str) -> threading.Timer:
    """From now, `seconds` for the process to stop by itself; then it exits at once,
    with EX_OVERDUE, leaving unfinished work to the next one (a thread: it fires even
    when the event loop is stuck)."""
    timer = threading.Timer(seconds, _overdue, args=(seconds, process))
    timer.daemon = True
    timer.start()
    return timer


def _overdue(seconds: float, process: str) -> None:
    log.error("the %s did not stop within %.0f s; exiting", process, seconds)
    logging.shutdown()
    os._exit(EX_OVERDUE)
