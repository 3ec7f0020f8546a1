"""What a web page in the user's browser can make the service do (embedded mode acts as
the local admin for a request without a key), and the headers every answer carries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.api.conftest import Api
from tests.api.helpers import OPERATOR_KEY, admitted, charge
from tests.api.live import serving

EVENTS = orjson.dumps({"events": [admitted("g1"), charge("g2")]})


async def _ledgered(api: Api) -> int:
    return int(await api.scalar("SELECT count(*) FROM ingest_ledger"))


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "text/plain;charset=UTF-8"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "multipart/form-data; boundary=x"},
        {},  # a Blob without a type is sent with no Content-Type at all
    ],
    ids=["text/plain", "text/plain;charset", "form", "multipart", "none"],
)
async def test_a_body_a_page_can_send_without_preflight_is_refused(
    api: Api, headers: dict[str, str]
) -> None:
    response = await api.client.post("/v1/events", content=EVENTS, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["detail"].startswith("Content-Type:")
    assert await _ledgered(api) == 0
    # JSON is what every route takes, with or without parameters
    for content_type in ("application/json", "Application/JSON; charset=utf-8"):
        accepted = await api.client.post(
            "/v1/events", content=EVENTS, headers={"content-type": content_type}
        )
        assert accepted.status_code == 202, accepted.text


async def test_every_json_route_refuses_a_plain_text_body(api: Api) -> None:
    for method, path in (
        ("POST", "/v1/subscriptions"),
        ("PUT", "/v1/alert-thresholds"),
        ("POST", "/v1/drg-catalogues"),
        ("POST", "/v1/alerts/x/ack"),
        ("PATCH", "/v1/subscriptions/sub_00"),
        ("POST", "/v1/hospitals/H001/cases/C1/precheck"),
    ):
        response = await api.client.request(
            method, path, content=b'{"url": "http://127.0.0.1:9/x"}', headers={}
        )
        assert response.status_code == 415, (method, path, response.text)
    assert int(await api.scalar("SELECT count(*) FROM webhook_subscriptions")) == 0


async def test_a_dns_rebinding_page_is_refused_by_its_host(tmp_path: Path) -> None:
    """The page's name resolves to 127.0.0.1: the request reaches the real socket with
    the page's own name as its Host."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}"
    app = create_app(ApiSettings(database_url=database), connect_broker=False)
    async with app.router.lifespan_context(app), serving(app) as base:
        port = int(base.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for host in (
                f"attacker.example:{port}",
                "attacker.example",
                f"127.0.0.1.attacker.example:{port}",
                f"127.0.0.1:{port + 1}",  # another service's port on this machine
                "127.0.0.1",
            ):
                response = await client.get("/v1/alerts", headers={"host": host})
                assert response.status_code == 400, (host, response.text)
                assert response.json()["detail"].startswith("Host:")
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST.:{port}"):
                response = await client.get("/v1/alerts", headers={"host": host})
                assert response.status_code == 200, (host, response.text)


async def test_a_page_of_another_origin_is_refused(api: Api) -> None:
    own = "http://test"  # the base URL the test client asks for
    for origin in (
        "https://attacker.example",
        "http://127.0.0.1:8000",  # another port is another origin
        "http://test:8080",
        "null",  # sandboxed frames and some redirects
    ):
        response = await api.client.post(
            "/v1/events",
            content=EVENTS,
            headers={"content-type": "application/json", "origin": origin},
        )
        assert response.status_code == 403, (origin, response.text)
        assert response.json()["detail"].startswith("Origin:")
    assert await _ledgered(api) == 0
    same = await api.client.post(
        "/v1/events", content=EVENTS, headers={"content-type": "application/json", "origin": own}
    )
    assert same.status_code == 202, same.text


async def test_a_cross_site_fetch_is_refused_but_a_followed_link_is_not(api: Api) -> None:
    cross = await api.client.get(
        "/v1/alerts", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"}
    )
    assert cross.status_code == 403, cross.text
    sibling = await api.client.post(
        "/v1/subscriptions/sub_00/test", headers={"sec-fetch-site": "same-site"}
    )
    assert sibling.status_code == 403, sibling.text
    followed = await api.client.get(
        "/docs", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    )
    assert followed.status_code == 200
    own = await api.client.get("/v1/alerts", headers={"sec-fetch-site": "same-origin"})
    assert own.status_code == 200


@pytest.fixture
async def listed_hosts(
    postgres_url: str, pg_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        mode="production",
        database_url=postgres_url,
        api_keys=OPERATOR_KEY,
        allowed_hosts="drg.hospital.example, *.drg.hospital.example",
    )
    app = create_app(settings, connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="https://drg.hospital.example",
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        ) as client:
            yield client


async def test_production_answers_only_the_listed_hosts(listed_hosts: httpx.AsyncClient) -> None:
    assert (await listed_hosts.get("/v1/alerts")).status_code == 200
    ward = await listed_hosts.get("/v1/alerts", headers={"host": "ward3.drg.hospital.example"})
    assert ward.status_code == 200
    other = await listed_hosts.get("/v1/alerts", headers={"host": "drg.attacker.example"})
    assert other.status_code == 400
    # a probe addresses the pod by its IP: health and metrics answer it
    for path in ("/healthz", "/metrics"):
        probe = await listed_hosts.get(path, headers={"host": "10.1.2.3:8000"})
        assert probe.status_code == 200, path
    foreign = await listed_hosts.get("/v1/alerts", headers={"origin": "https://attacker.example"})
    assert foreign.status_code == 403
    own = await listed_hosts.get("/v1/alerts", headers={"origin": "https://drg.hospital.example"})
    assert own.status_code == 200


async def test_production_answers_any_host_by_default(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    settings = ApiSettings(mode="production", database_url=postgres_url, api_keys=OPERATOR_KEY)
    app = create_app(settings, connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://10.1.2.3:8000"
        ) as client:
            response = await client.get(
                "/v1/alerts",
                headers={"Authorization": f"Bearer {OPERATOR_KEY}", "host": "api.internal"},
            )
    assert response.status_code == 200


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


async def test_every_answer_carries_the_security_headers(api: Api) -> None:
    answers = [
        await api.client.get("/v1/alerts"),
        await api.client.get("/healthz"),
        await api.client.get("/metrics"),
        await api.client.get("/openapi.json"),
        await api.client.get("/v1/nothing-here"),
        await api.client.post("/v1/events", content=b"x", headers={"content-type": "text/plain"}),
        await api.client.get("/v1/alerts", headers={"authorization": "Bearer wrong"}),
        await api.client.get("/docs"),
    ]
    for response in answers:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.url, name)
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, response.request.url
    assert answers[0].headers["content-security-policy"].startswith("default-src 'none'")


async def test_docs_serve_swagger_ui_from_this_origin(api: Api) -> None:
    page = await api.client.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    # nothing on the page comes from elsewhere, and no script is inline
    addresses = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert addresses and all(address.startswith("/docs/assets/") for address in addresses)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)
    for address in addresses:
        asset = await api.client.get(address)
        assert asset.status_code == 200, address
        assert len(asset.content) > 0
    bundle = await api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content and len(bundle.content) > 500_000
    assert "javascript" in bundle.headers["content-type"]
    assert (await api.client.get("/docs/assets/../settings.py")).status_code == 404
    assert (await api.client.get("/redoc")).status_code == 404
