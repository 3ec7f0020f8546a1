"""Production mode: every endpoint but health and metrics needs an API key."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.access import service as access_service
from services.api import auth
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.api.helpers import OPERATOR_KEY, OTHER_OPERATOR_KEY
from tests.faults.report import report

KEY = OPERATOR_KEY


@pytest.fixture
async def production(postgres_url: str, pg_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        mode="production", database_url=postgres_url, api_keys=f"{OTHER_OPERATOR_KEY},{KEY}"
    )
    app = create_app(settings, connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/alerts"),
        ("GET", "/v1/hospitals/H1/cases"),
        ("GET", "/v1/hospitals/H1/cases/C1"),
        ("POST", "/v1/events"),
        ("GET", "/v1/dead-letters"),
        ("POST", "/v1/drg-catalogues"),
        ("PUT", "/v1/alert-thresholds"),
        ("GET", "/v1/alerts/stream"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    ],
)
async def test_every_endpoint_refuses_a_missing_or_wrong_key(
    production: httpx.AsyncClient, method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"X-API-Key": ""}):
        response = await production.request(method, path, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_valid_key_is_let_through_either_way(production: httpx.AsyncClient) -> None:
    bearer = await production.get("/v1/alerts", headers={"Authorization": f"Bearer {KEY}"})
    header = await production.get("/v1/alerts", headers={"X-API-Key": KEY})
    assert bearer.status_code == header.status_code == 200
    assert bearer.json() == {"items": [], "next_cursor": None}


async def test_health_and_metrics_stay_open(production: httpx.AsyncClient) -> None:
    assert (await production.get("/healthz")).status_code == 200
    assert (await production.get("/metrics")).status_code == 200
    assert (await production.get("/readyz")).status_code == 503  # open, but not ready


@pytest.mark.parametrize(
    "keys",
    [
        "",
        "changeme",
        "short",
        f"{OPERATOR_KEY},secret",
        # each of these started production before operator keys needed real entropy
        "aaaaaaaaaaaaaaaa",
        "changeme-changeme",
        "a" * 64,
        "changeme-changeme-changeme-changeme",
        "Password123Password123Password123",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
        "k3y-for-the-test-suite-0123456789",
        "0123456789" * 4,
        "xK9#" * 10,
    ],
)
def test_production_refuses_to_start_with_a_default_or_weak_secret(keys: str) -> None:
    with pytest.raises(ValidationError, match="DRGWATCH_API_KEYS") as refused:
        ApiSettings(mode="production", database_url="postgresql+asyncpg://x/y", api_keys=keys)
    for key in filter(None, keys.split(",")):
        if len(key) > 8:
            assert key not in str(refused.value), "a refused key must not reach the logs"


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    ],
    ids=["token_urlsafe(32)", "token_hex(32)", "base64 of 32 bytes"],
)
def test_production_starts_with_random_keys(make_key: Callable[[], str]) -> None:
    for _ in range(200):
        keys = f"{make_key()},{make_key()}"
        settings = ApiSettings(
            mode="production", database_url="postgresql+asyncpg://x/y", api_keys=keys
        )
        assert len(settings.api_key_list) == 2


def test_embedded_mode_runs_open() -> None:
    assert ApiSettings(mode="embedded").api_key_list == []


async def test_wrong_keys_are_rate_limited_per_address_without_database_queries(
    postgres_url: str, pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a short caller cache, so that the test sees a valid key looked up again
    monkeypatch.setattr(auth, "CACHE_SECONDS", 0.3)
    # the budget refills so slowly here that a slow run cannot earn another guess
    settings = ApiSettings(
        mode="production",
        database_url=postgres_url,
        api_keys=KEY,
        auth_failures_per_minute=0.001,
    )
    app = create_app(settings, connect_broker=False)
    key_lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_keys" in statement:
            key_lookups.append(statement)

    async with app.router.lifespan_context(app):
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", count)
        async with app.state.sessions() as db_session:
            _, valid = await access_service.create_identity(
                db_session=db_session,
                name="his",
                role="hospital_system",
                hospitals=["H1"],
                departments=[],
            )
            _, unseen = await access_service.create_identity(
                db_session=db_session,
                name="new",
                role="hospital_system",
                hospitals=["H1"],
                departments=[],
            )
            await db_session.commit()

        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://test")

        async with client("203.0.113.7") as guesser, client("198.51.100.9") as bystander:
            # the identity's key was valid from this address before the guessing began
            assert (await guesser.get("/v1/alerts", headers=_bearer(valid))).status_code == 200
            key_lookups.clear()
            statuses = []
            started = time.monotonic()
            for _ in range(1000):
                response = await guesser.get(
                    "/v1/alerts", headers=_bearer("dwk_" + secrets.token_urlsafe(32))
                )
                statuses.append(response.status_code)
            elapsed = time.monotonic() - started
            limited = response
            burst = settings.auth_failures_burst
            assert statuses[:burst] == [401] * burst
            assert set(statuses[burst:]) == {429}, Counter(statuses)
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.json()["detail"].startswith("too many wrong API keys")
            # a refused guess costs no database query once the address is limited
            assert len(key_lookups) == burst, len(key_lookups)
            # the operator key and a key valid lately still work from that address (the
            # latter looked up: its cache entry is gone); a key never seen valid waits
            assert (await guesser.get("/v1/alerts", headers=_bearer(KEY))).status_code == 200
            await asyncio.sleep(0.4)
            key_lookups.clear()
            assert (await guesser.get("/v1/alerts", headers=_bearer(valid))).status_code == 200
            assert len(key_lookups) == 1
            assert (await guesser.get("/v1/alerts", headers=_bearer(unseen))).status_code == 429
            # another address has its own budget
            wrong = await bystander.get("/v1/alerts", headers=_bearer("dwk_wrong-" + "x" * 40))
            assert wrong.status_code == 401
    report(
        "wrong API keys from one address (production, PostgreSQL)",
        {
            "keys tried": len(statuses),
            "answered 401 (looked up)": statuses.count(401),
            "answered 429 (no database query)": statuses.count(429),
            "key lookups in the database": burst,
            "rate": f"{len(statuses) / elapsed:.0f}/s",
        },
    )


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
