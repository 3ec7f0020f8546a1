"""The API freezes what its first requests built, once, after its warm-up requests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from services.cli.collector import FreezeAfterWarmUp

kept: list[object] = []


async def build(request: Request) -> PlainTextResponse:
    kept.append({"built by": request.url.path, "items": [[n] for n in range(50)]})
    return PlainTextResponse("ok")


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    kept.clear()


async def test_what_the_first_requests_keep_is_frozen_once_after_the_warm_up(
    unfrozen: None,
) -> None:
    app = FreezeAfterWarmUp(Starlette(routes=[Route("/build", build)]), requests=3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(2):
            assert (await client.get("/build")).status_code == 200
        assert gc.get_freeze_count() == 0
        assert (await client.get("/build")).status_code == 200
        frozen = gc.get_freeze_count()
        assert frozen > 0
        collected = {id(item) for item in gc.get_objects()}
        assert kept and not any(id(item) in collected for item in kept)
        # later requests freeze nothing more
        for _ in range(3):
            assert (await client.get("/build")).status_code == 200
        assert gc.get_freeze_count() == frozen
