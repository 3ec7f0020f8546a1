"""/docs: Swagger UI over the OpenAPI document, every asset served by the service itself.

FastAPI's own page loads Swagger UI from a CDN, and is blank on a hospital intranet
without internet. The assets come from the pinned `fastapi-offline` wheel (Swagger UI
5, Apache-2.0). The page carries no inline script, so its Content-Security-Policy
allows scripts of this origin only; Swagger UI's validator badge, which would send the
document's address to an outside service, is off.
"""

from __future__ import annotations

import html
import importlib.resources
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# the page needs its own scripts and styles, inline images (Swagger UI's icons are data:
# URIs) and the OpenAPI document from this origin; nothing else
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
ASSET_CACHE = "public, max-age=86400"
INIT_SCRIPT = """\
window.addEventListener("load", function () {
  var page = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: page.dataset.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
"""
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def assets_directory() -> Path:
    """Where the pinned wheel keeps Swagger UI's files."""
    return Path(str(importlib.resources.files("fastapi_offline") / "static"))


def page(root_path: str, openapi_url: str, title: str) -> str:
    assets = html.escape(f"{root_path}{ASSETS_PATH}")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)} - API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi="{html.escape(root_path + openapi_url)}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    """The API explorer."""
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    openapi_url = request.app.openapi_url or "/openapi.json"
    return HTMLResponse(
        page(root_path, openapi_url, request.app.title),
        headers={"Content-Security-Policy": DOCS_POLICY, "Cache-Control": "no-cache"},
    )


@router.get(f"{ASSETS_PATH}/init.js")
async def init_script() -> Response:
    return Response(
        INIT_SCRIPT,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": ASSET_CACHE},
    )


def _asset(name: str) -> Callable[[], Awaitable[FileResponse]]:
    async def serve() -> FileResponse:
        return FileResponse(assets_directory() / name, headers={"Cache-Control": ASSET_CACHE})

    return serve


# one route per file: a name from the request never becomes a path
for _name in ASSETS:
    router.add_api_route(f"{ASSETS_PATH}/{_name}", _asset(_name), methods=["GET"])
