"""A stopping process's bound: it exits when its stop outlasts DRGWATCH_SHUTDOWN_SECONDS."""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

EX_OVERDUE = 75  # a stop that outlasted its bound (EX_TEMPFAIL)


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
