"""The dashboard: the single-page app's views and its built assets, served by the service.

The page is built from `services/api/ui/` (Vue, Element Plus, ECharts) by `make ui` into
`ui/dist/`, which is committed, so running drgwatch needs no Node. Its views
(`PAGE_PATHS`) all answer `index.html`, never cached; the built files under `/ui/assets/`
carry a content hash in their names and are cached for a year. Only the files the build
wrote are served: a name from the request is looked up among them, never joined to a
path, and any other `/ui/` path is 404.

The views are open (no key): the page itself holds no data, and every figure on it comes
from the `/v1` endpoints, which check the caller. Its Content-Security-Policy allows this
origin's scripts and styles only, plus inline style attributes (Element Plus positions
popups and sizes tables through them); no inline script, no `eval`, no other origin.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from services.api.exceptions import PageAssetNotFound

router = APIRouter(include_in_schema=False)

UI_DIRECTORY = Path(__file__).parent / "ui"
DIST_DIRECTORY = UI_DIRECTORY / "dist"
ASSETS_PREFIX = "/ui/"
PAGE_PATHS = (
    "/",
    "/login",
    "/hospitals/{hospital_id}/departments/{department}",
    "/hospitals/{hospital_id}/cases/{case_id}",
)
_PAGE_PATTERN = re.compile(r"^/(login|hospitals/[^/]+/(departments|cases)/[^/]+)?$")
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self' data:; connect-src 'self';"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
# the files the build writes and the sources it is made from (kept in step with
# ui/scripts/source-hash.mjs, which writes dist/source.sha256)
SOURCE_ENTRIES = (
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.js",
    "scripts",
    "src",
)


def is_page_path(path: str) -> bool:
    """Whether `path` is one of the dashboard's views or assets (open: they hold no data)."""
    return path.startswith(ASSETS_PREFIX) or _PAGE_PATTERN.match(path) is not None


def built_assets(directory: Path = DIST_DIRECTORY) -> dict[str, Path]:
    """The built asset files by name (`assets/<name>` under the dist directory)."""
    assets = directory / "assets"
    if not assets.is_dir():
        return {}
    return {path.name: path for path in sorted(assets.iterdir()) if path.is_file()}


def source_digest(directory: Path = UI_DIRECTORY) -> str:
    """One SHA-256 over the page's sources, as the build records it in dist/source.sha256."""
    names: list[str] = []
    for entry in SOURCE_ENTRIES:
        path = directory / entry
        if path.is_dir():
            names.extend(
                item.relative_to(directory).as_posix() for item in path.rglob("*") if item.is_file()
            )
        else:
            names.append(entry)
    manifest = "".join(
        f"{hashlib.sha256((directory / name).read_bytes()).hexdigest()}  {name}\n"
        for name in sorted(names)
    )
    return hashlib.sha256(manifest.encode()).hexdigest()


def _index() -> Response:
    index = DIST_DIRECTORY / "index.html"
    if not index.is_file():
        raise PageAssetNotFound("the dashboard is not built: run `make ui`")
    return FileResponse(
        index,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": PAGE_CACHE},
    )


async def page() -> Response:
    """The dashboard's index.html; the page's router shows the view the path names."""
    return _index()


for _path in PAGE_PATHS:
    router.add_api_route(_path, page, methods=["GET"])


@router.get("/ui/assets/{name}")
async def asset(name: str) -> Response:
    """A built file of the page, by its content-hashed name."""
    # listed on each request (a handful of files): a rebuilt dist is served without a restart
    path = built_assets().get(name)
    if path is None:
        raise PageAssetNotFound("no such file of the dashboard")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": ASSET_CACHE, "Content-Security-Policy": PAGE_POLICY},
    )


@router.get("/ui/{rest:path}")
async def unknown_asset(rest: str) -> Response:
    """Anything else under /ui/ is not a file of the page."""
    raise PageAssetNotFound("no such file of the dashboard")
