"""The live stream is woken by the alert feed: an alert written by another process reaches
an open stream within a few of the feed's ticks, far sooner than a stream reads by
itself; a quiet SQLite database costs the feed no query; with no stream open the feed
does not run (real uvicorn: ASGITransport buffers a stream whole)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.alerts import live
from services.api.settings import ApiSettings
from services.storage.engine import make_engine, session_factory
from tests.api.conftest import Api, running_api
from tests.api.live import serving
from tests.api.webhooks import raise_alert


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(" ".join(str(args[2]).split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


class Reader:
    """Reads one stream in the background: when each alert (by id) arrived."""

    def __init__(self, base: str) -> None:
        self.arrived: dict[str, float] = {}
        self.connected = asyncio.Event()
        self._task = asyncio.create_task(self._read(base))

    async def _read(self, base: str) -> None:
        async with (
            httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5, read=30)) as client,
            client.stream("GET", "/v1/alerts/stream") as response,
        ):
            self.connected.set()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    alert = orjson.loads(line[6:])
                    self.arrived.setdefault(alert["alert_id"], time.monotonic())

    async def until(self, alert_id: str, timeout: float = 10.0) -> float:
        started = time.monotonic()
        while alert_id not in self.arrived:
            assert time.monotonic() - started < timeout, "the alert did not come"
            await asyncio.sleep(0.005)
        return self.arrived[alert_id]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._task


@pytest.fixture(params=["sqlite", "postgresql"])
async def stream_api(
    request: pytest.FixtureRequest, postgres_url: str, pg_engine: AsyncEngine, tmp_path: Path
) -> Any:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}"
        if request.param == "sqlite"
        else postgres_url
    )
    settings = ApiSettings(database_url=url, topic_prefix="drgwatch-test", data_dir=tmp_path)
    async with running_api(settings) as running:
        yield running


async def test_an_alert_written_elsewhere_reaches_the_stream_within_a_few_ticks(
    stream_api: Api,
) -> None:
    # another process's engine writes the alerts, as the worker's projector does
    writer = make_engine(str(stream_api.engine.url.render_as_string(hide_password=False)))
    writer_sessions = session_factory(writer)
    try:
        async with serving(stream_api.app) as base:
            reader = Reader(base)
            await asyncio.wait_for(reader.connected.wait(), 10)
            await asyncio.sleep(live.POLL_SECONDS + 0.2)  # the stream reads, then waits
            waits = []
            for number in range(5):
                await asyncio.sleep(0.1 + 0.13 * number)  # at different moments of a tick
                written = time.monotonic()
                alert_id = await raise_alert(writer_sessions, case_id=f"C{number}")
                waits.append(await reader.until(alert_id) - written)
            await reader.close()
    finally:
        await writer.dispose()
    # a stream left to read by itself would take POLL_SECONDS: the feed wakes it first
    assert max(waits) < live.POLL_SECONDS / 2, waits
    assert sorted(waits)[2] < 4 * live.FEED_TICK_SECONDS + 0.1, waits


async def test_a_quiet_sqlite_database_costs_the_feed_no_query(tmp_path: Path) -> None:
    settings = ApiSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}",
        topic_prefix="drgwatch-test",
        data_dir=tmp_path,
    )
    async with running_api(settings) as running, serving(running.app) as base:
        reader = Reader(base)
        await asyncio.wait_for(reader.connected.wait(), 10)
        await asyncio.sleep(4 * live.FEED_TICK_SECONDS)
        with statements(running.engine) as sent:
            await asyncio.sleep(live.POLL_SECONDS - 0.3)
        # the stream's own read comes once a POLL_SECONDS at most; the feed asks nothing
        feed_queries = [s for s in sent if "max(alerts.seq)" in s]
        assert feed_queries == [], sent
        assert len(sent) <= 2, sent
        feed = running.app.state.alert_feed
        assert feed._task is not None and not feed._task.done()
        await reader.close()
        await asyncio.sleep(4 * live.FEED_TICK_SECONDS)
        assert feed._task is None or feed._task.done()  # no stream: no feed


def test_only_a_sqlite_file_is_watched_by_its_files(tmp_path: Path) -> None:
    path = tmp_path / "drgwatch.db"
    assert live.sqlite_files(f"sqlite+aiosqlite:///{path}") == (
        path,
        tmp_path / "drgwatch.db-wal",
    )
    assert live.sqlite_files("sqlite+aiosqlite:///:memory:") == ()
    assert live.sqlite_files("postgresql+asyncpg://u@127.0.0.1/test") == ()
