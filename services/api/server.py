"""uvicorn's server as the API process runs it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class StoppingServer(uvicorn.Server):
    """uvicorn's server that tells the app it is stopping. Requests in flight are
    answered (within `timeout_graceful_shutdown`); a live stream never ends by itself, so
    each one closes at its next poll and its client reconnects, to this API once it is
    back or to another, with Last-Event-ID, missing nothing."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            log.warning("stopping: answering the requests in flight (signal %d)", sig)
        self.app.state.stopping = True
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn raises the signal again once it has stopped, and the process dies
            # of it; a stop asked for is a clean one: the process exits 0
            self._captured_signals.clear()
