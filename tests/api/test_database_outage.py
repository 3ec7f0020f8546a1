"""While the database is unavailable the API says so: 503 with Retry-After, never a 500.

The app runs over a real PostgreSQL database that is made to refuse connections (and
its open connections are ended), as when the server restarts or is cut off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.storage import engine as engine_module
from tests.api.helpers import charge
from tests.conftest import PG_HOST, PG_PORT, PG_USER


async def set_connections_allowed(url: str, allowed: bool) -> None:
    name = url.rsplit("/", 1)[1]
    connection = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres"
    )
    try:
        await connection.execute(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'
        )
        if not allowed:
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                name,
            )
    finally:
        await connection.close()


@pytest.fixture
async def client(own_postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ApiSettings(database_url=own_postgres_url), connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/events", charge("outage-1")),
        ("GET", "/v1/hospitals/H001/cases/C1", None),
        ("GET", "/v1/hospitals/H001/cases", None),
        ("GET", "/v1/alerts", None),
        ("GET", "/v1/dead-letters", None),
    ],
)
async def test_an_unavailable_database_is_503_with_retry_after_then_recovers(
    client: httpx.AsyncClient, own_postgres_url: str, method: str, path: str, body: object
) -> None:
    assert (await client.get("/v1/alerts")).status_code == 200  # the pool holds a connection
    await set_connections_allowed(own_postgres_url, False)
    try:
        response = await client.request(method, path, json=body)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"].isdigit()
        assert "unavailable" in response.json()["detail"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "unavailable" in ready.json()["checks"]["database"]
    finally:
        await set_connections_allowed(own_postgres_url, True)
    # it recovers by itself: no restart, the next request is served
    for _ in range(20):
        response = await client.request(method, path, json=body)
        if response.status_code != 503:
            break
        await asyncio.sleep(0.25)
    assert response.status_code in (200, 202, 404), response.text


async def end_open_connections(url: str) -> None:
    """End the database's server connections (the pool's, unknown to it), as a server
    restart does, still allowing new ones."""
    connection = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres"
    )
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.rsplit("/", 1)[1],
        )
    finally:
        await connection.close()


async def test_a_posting_whose_pooled_connection_was_cut_is_recorded_on_a_new_one(
    client: httpx.AsyncClient, own_postgres_url: str
) -> None:
    """The pool does not ping a connection it handed out a moment ago: the posting finds
    it dead, and is recorded once more on a new one rather than refused."""
    assert (await client.post("/v1/events", json=charge("before-cut"))).status_code == 202
    await end_open_connections(own_postgres_url)
    response = await client.post("/v1/events", json=charge("after-cut"))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    again = await client.post("/v1/events", json=charge("after-cut"))
    assert again.json()["duplicates"] == 1


async def test_a_connection_cut_while_idle_in_the_pool_is_replaced_before_use(
    client: httpx.AsyncClient, own_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert (await client.get("/v1/alerts")).status_code == 200
    await end_open_connections(own_postgres_url)
    response = await client.get("/v1/alerts")
    assert response.status_code == 200, response.text
