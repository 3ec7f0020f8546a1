"""The live alert stream: what it sends, how often it asks, and who may hold one open.

A stream polls the alerts after its cursor every `POLL_SECONDS` and sends them as
server-sent events (a heartbeat comment after `HEARTBEAT_SECONDS` of quiet). Every
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
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Receive, Scope, Send

from services.access.principal import Principal
from services.alerting.alerts import service as alert_service
from services.api.auth import CallerCheck
from services.api.exceptions import TooManyStreams

HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 0.2
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


class HeldStream(StreamingResponse):
    """A streaming response that gives its slot back however it ends (the generator's
    own cleanup does not run when it is cancelled before its first step)."""

    def __init__(self, content: AsyncIterator[str], *, release: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def alert_events(
    *,
    sessions: Any,
    caller: Principal,
    recheck: CallerCheck,
    is_disconnected: Callable[[], Any],
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
        await asyncio.sleep(POLL_SECONDS)
