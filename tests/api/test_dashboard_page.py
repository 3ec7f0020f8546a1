"""The dashboard's page as the service serves it: its views answer index.html without a
key (the data endpoints check the caller), its built assets are cached by content hash,
nothing else under /ui/ is served, and the committed build is not older than its sources."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api import ui
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.api.conftest import Api
from tests.api.helpers import OPERATOR_KEY

VIEWS = ["/", "/login", "/hospitals/H1/departments/cardiology", "/hospitals/H1/cases/C-001"]


@pytest.fixture
async def production(
    postgres_url: str, pg_engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        mode="production", database_url=postgres_url, api_keys=OPERATOR_KEY, data_dir=tmp_path
    )
    app = create_app(settings, connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def _script_and_style_names(index: str) -> list[str]:
    return re.findall(r'(?:src|href)="/ui/assets/([^"]+)"', index)


@pytest.mark.parametrize("path", VIEWS)
async def test_every_view_is_the_page_without_a_key(
    production: httpx.AsyncClient, path: str
) -> None:
    response = await production.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert '<div id="app">' in response.text
    # the data is not: the endpoints the page calls still want a key
    assert (await production.get("/v1/hospitals/H1/cases")).status_code == 401


async def test_the_page_keeps_the_security_headers_and_a_strict_policy(api: Api) -> None:
    response = await api.client.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self' 'unsafe-inline';" in policy
    assert "connect-src 'self';" in policy
    assert "unsafe-eval" not in policy
    assert "http" not in policy  # no other origin
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_page_loads_nothing_from_another_origin_and_no_inline_script(
    api: Api,
) -> None:
    index = (await api.client.get("/")).text
    assert not re.search(r"(src|href)=\"(https?:)?//", index)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", index)
    names = _script_and_style_names(index)
    assert any(name.endswith(".js") for name in names)
    assert any(name.endswith(".css") for name in names)


async def test_built_assets_are_served_with_a_long_cache(api: Api) -> None:
    index = (await api.client.get("/")).text
    for name in _script_and_style_names(index):
        response = await api.client.get(f"/ui/assets/{name}")
        assert response.status_code == 200, name
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        expected = "text/javascript" if name.endswith(".js") else "text/css"
        assert response.headers["content-type"].startswith(expected)
        assert response.content == (ui.DIST_DIRECTORY / "assets" / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/ui/assets/missing.js",
        "/ui/assets/..%2f..%2fui.py",
        "/ui/index.html",
        "/ui/source.sha256",
        "/ui/",
        "/ui/assets/%2e%2e/index.html",
    ],
)
async def test_nothing_else_under_ui_is_served(production: httpx.AsyncClient, path: str) -> None:
    response = await production.get(path)
    assert response.status_code == 404
    assert response.json()["detail"]


async def test_a_path_that_is_no_view_still_needs_a_key(production: httpx.AsyncClient) -> None:
    for path in ("/hospitals/H1", "/hospitals/H1/cases/C-1/more", "/loginx"):
        assert (await production.get(path)).status_code == 401, path


async def test_the_views_are_not_in_the_openapi_document(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    for view in [*ui.PAGE_PATHS, "/ui/assets/{name}", "/ui/{rest}"]:
        assert view not in paths
    assert paths  # the document itself is there


def test_the_committed_build_is_made_from_the_current_sources() -> None:
    recorded = (ui.DIST_DIRECTORY / "source.sha256").read_text().strip()
    assert recorded == ui.source_digest(), (
        "services/api/ui changed since its dist was built: run `make ui` and commit dist/"
    )


def test_the_package_ships_the_built_page() -> None:
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"services.api" = ["ui/dist/*.html", "ui/dist/*.sha256", "ui/dist/assets/*"]' in (
        pyproject
    )
    assert set(ui.built_assets()) == {
        path.name for path in (ui.DIST_DIRECTORY / "assets").iterdir()
    }
