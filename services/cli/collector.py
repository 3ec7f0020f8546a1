"""The API process's garbage collector: what lives as long as the process is kept out of
its full passes.

A full pass walks every object the collector tracks and not frozen, holding every
request in flight meanwhile: with the modules, the app, the ORM's configured mappers,
compiled statements and the reference data the API keeps, a pass took 10-60 ms, three or
four times in 15 s of lookups, which made the slow tail of case lookups. `gc.freeze()`
moves what exists into a generation the collector leaves alone. The API freezes three
times: before the server starts (the modules and the app), once start-up has finished
(the lifespan's connections, rules and publisher), and after its first
`WARM_UP_REQUESTS` requests (what the first requests of each route build and keep:
mappers, compiled statements, caches). Each freeze first collects, so that only what is
alive is frozen; what a freeze keeps that dies later is only ever freed by reference
counting, so the freezes are few and fixed.
"""

from __future__ import annotations

import gc
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

WARM_UP_REQUESTS = 500


def freeze() -> None:
    """Collect, then keep everything alive now out of the collector's passes."""
    gc.collect()
    gc.freeze()


class FreezeAfterWarmUp:
    """ASGI middleware: freezes once, when its `requests`-th HTTP request has been answered."""

    def __init__(self, app: ASGIApp, requests: int = WARM_UP_REQUESTS) -> None:
        self.app = app
        self.left = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.left <= 0:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.left -= 1
            if self.left == 0:
                freeze()


def server_freezing_after_start(config: Any, server_class: Any = None, **options: Any) -> Any:
    """A uvicorn server (`server_class`, built with `config` and `options`; default
    uvicorn's own) that freezes once its start-up (the app's lifespan) has finished."""
    import uvicorn

    class Server(server_class or uvicorn.Server):  # type: ignore[misc]
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            freeze()

    return Server(config, **options)
