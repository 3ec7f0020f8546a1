"""The live alert stream: what it sends, when it asks, and who may hold one open.

A stream reads the alerts after its cursor and sends them as server-sent events (a
heartbeat comment after `HEARTBEAT_SECONDS` of quiet), then waits for `AlertFeed` to
say that alerts may have been written, or `POLL_SECONDS` at most, and reads again. Every
`CALLER_RECHECK_SECONDS` it asks again who its caller is, bypassing the per-process
caller cache: when the key was revoked, the identity disabled, or its role or scope
changed, the stream ends, so a disabled identity stops hearing alerts within that
time (the client reconnects with Last-Event-ID and is answered under its key's
current standing: 401, or its new scope). A database that cannot answer the check is
waited out like one that cannot answer the poll.

`StreamSlots` caps the streams one identity holds open in this API process: each
stream is a poll loop, so a caller opening hundreds of them slowed every other
caller's requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Receive, Scope, Send

from services.access.principal import Principal
from services.alerting.alerts import service as alert_service
from services.api.auth import CallerCheck
from services.api.exceptions import TooManyStreams

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
# a stream reads at least this often, whatever the feed says
POLL_SECONDS = 1.0
# how often the feed looks for new alerts while a stream is open: half of it is what the
# wait adds to an alert's way to the stream on average
FEED_TICK_SECONDS = 0.05
ALERTS_PER_READ = 500  # a full read is followed by the next at once
UNAVAILABLE_RETRY_SECONDS = 1.0
# half the 10 s within which a revoked key stops working elsewhere, leaving room for a
# slow poll
CALLER_RECHECK_SECONDS = 5.0
# how long a caller with every slot taken is asked to wait before trying again
SLOTS_RETRY_SECONDS = 10


class StreamSlots:
    """Open streams per identity in this process, at most `limit` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def take(self, identity_id: str) -> Callable[[], None]:
        """Hold a slot (TooManyStreams if none is free); returns what gives it back."""
        held = self._open.get(identity_id, 0)
        if held >= self.limit:
            raise TooManyStreams(self.limit, SLOTS_RETRY_SECONDS)
        self._open[identity_id] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            remaining = self._open.get(identity_id, 1) - 1
            if remaining > 0:
                self._open[identity_id] = remaining
            else:
                self._open.pop(identity_id, None)

        return release

    def held(self, identity_id: str) -> int:
        return self._open.get(identity_id, 0)


def sqlite_files(database_url: str) -> tuple[Path, ...]:
    """The files a commit to this SQLite database changes (none for another database)."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in {None, "", ":memory:"}:
        return ()
    database = Path(str(url.database))
    return (database, database.with_name(database.name + "-wal"))


class AlertFeed:
    """Wakes this process's live streams when new alerts are in the database.

    One task, running only while a stream is open (an API with none does nothing here):
    every `FEED_TICK_SECONDS` it reads the highest alert sequence, one query for every
    stream, and when it moved it bumps `generation`, which the streams wait on. On SQLite
    it first looks at the database's files (size and modification time): nothing was
    committed, by any process, while they are unchanged, so a quiet database costs no
    query. A stream reads the alerts itself, after its own cursor and through its own
    filters, so the feed only decides when; a missed wake-up costs at most
    `POLL_SECONDS`.
    """

    def __init__(
        self, sessions: Any, watched_files: tuple[Path, ...] = (), tick: float = FEED_TICK_SECONDS
    ) -> None:
        self._sessions = sessions
        self._files = watched_files
        self._tick = tick
        self.generation = 0
        self._moved = asyncio.Event()
        self._streams = 0
        self._task: asyncio.Task[None] | None = None
        self._last_seq: int | None = None
        self._files_seen: tuple[tuple[int, int], ...] | None = None

    def join(self) -> None:
        """A stream opened: run the feed if it is not running."""
        self._streams += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def leave(self) -> None:
        """A stream closed: the feed stops after its tick once none is left."""
        self._streams = max(0, self._streams - 1)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self, seen: int, timeout: float) -> None:
        """Until `generation` passes `seen`, or `timeout` seconds."""
        if self.generation > seen:
            return
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(moved.wait(), timeout)

    def _bump(self) -> None:
        self.generation += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    def _files_changed(self) -> bool:
        if not self._files:
            return True
        seen = []
        for path in self._files:
            try:
                status = os.stat(path)
                seen.append((status.st_mtime_ns, status.st_size))
            except OSError:
                seen.append((0, -1))
        current = tuple(seen)
        changed = current != self._files_seen
        self._files_seen = current
        return changed

    async def _run(self) -> None:
        while self._streams:
            if self._files_changed():
                try:
                    async with self._sessions() as db_session:
                        last = await alert_service.last_seq(db_session=db_session)
                except (SQLAlchemyError, OSError) as error:
                    # the streams' own reads wait the outage out; look again next time
                    log.debug("alert feed: no answer (%s)", type(error).__name__)
                    self._files_seen = None
                else:
                    if last != self._last_seq:
                        self._last_seq = last
                        self._bump()
            await asyncio.sleep(self._tick)


class HeldStream(StreamingResponse):
    """A streaming response that keeps the feed running while it is open and gives its
    slot back however it ends (the generator's own cleanup does not run when it is
    cancelled before its first step)."""

    def __init__(
        self, content: AsyncIterator[str], *, release: Callable[[], None], feed: AlertFeed
    ) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._release = release
        self._feed = feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._feed.join()
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._feed.leave()
            self._release()


async def alert_events(
    *,
    sessions: Any,
    caller: Principal,
    recheck: CallerCheck,
    is_disconnected: Callable[[], Any],
    feed: AlertFeed,
    cursor: int,
    hospital_id: str | None,
    department: str | None,
    min_level: str | None,
    kind: str | None = None,
) -> AsyncIterator[str]:
    """The stream's text: alerts after `cursor` as the caller may see them, until the
    client goes or the caller's standing changes."""
    yield "retry: 2000\n\n"
    quiet_since = time.monotonic()
    next_check = time.monotonic() + CALLER_RECHECK_SECONDS
    while not await is_disconnected():
        if time.monotonic() >= next_check:
            try:
                current = await recheck()
            except (SQLAlchemyError, OSError):
                current = caller  # cannot tell now: the poll below waits the outage out
            if current != caller:
                yield ": the caller's key or scope changed; closing\n\n"
                return
            next_check = time.monotonic() + CALLER_RECHECK_SECONDS
        seen = feed.generation  # read before the query: a wake-up after it is not lost
        try:
            async with sessions() as db_session:
                batch = await alert_service.alerts_after(
                    db_session=db_session,
                    caller=caller,
                    after_seq=cursor,
                    hospital_id=hospital_id,
                    department=department,
                    min_level=min_level,
                    kind=kind,
                    limit=ALERTS_PER_READ,
                )
        except (SQLAlchemyError, OSError):
            # the database is away: keep the stream open and try again shortly
            yield ": database unavailable, retrying\n\n"
            await asyncio.sleep(UNAVAILABLE_RETRY_SECONDS)
            continue
        for seq, alert in batch:
            cursor = seq
            yield f"id: {seq}\nevent: alert\ndata: {alert.model_dump_json()}\n\n"
        if batch:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
            quiet_since = time.monotonic()
            yield ": heartbeat\n\n"
        if len(batch) < ALERTS_PER_READ:
            await feed.wait(seen, POLL_SECONDS)
