"""The worker process's stop: Faust's own, within a bound.

On SIGTERM Faust stops its agents, the batch in hand is applied and its changelog
records are on the broker before its offsets are committed (transport.py), then the
consumer commits and leaves its group. A stop that outlasts the bound (a broker gone
meanwhile) ends the process without committing: what was applied and not committed
is delivered again to the next owner of the partition, which refuses it as already
applied.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from faust.worker import Worker

from services import logs
from services.stopping import exit_unless_stopped_within

log = logging.getLogger(__name__)


class BoundedWorker(Worker):
    """Faust's worker whose stop takes at most `stop_within` seconds."""

    def __init__(
        self,
        app: Any,
        *services: Any,
        stop_within: float,
        log_format: logs.LogFormat,
        loglevel: str,
        **options: Any,
    ) -> None:
        # Faust's worker takes its handlers from the app's configuration
        app.conf.loghandlers = [logs.handler(log_format)]
        super().__init__(
            app,
            *services,
            loglevel=loglevel,
            # the process's own lines (services/logs.py) instead of Faust's coloured ones
            logging_config={
                "version": 1,
                "disable_existing_loggers": False,
                "root": {"level": loglevel, "handlers": []},
            },
            **options,
        )
        self.stop_within = stop_within
        self._overdue: threading.Timer | None = None

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if self._overdue is None:
            log.warning(
                "stopping: finishing the batch in hand and committing (%s, within %.0f s)",
                signal.name,
                self.stop_within,
            )
            self._overdue = exit_unless_stopped_within(self.stop_within, "worker")
        super()._schedule_shutdown(signal)
