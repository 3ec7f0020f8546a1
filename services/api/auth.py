"""Credentials in production mode: every endpoint but health and metrics needs an API key.

A key is sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`; only SHA-256
digests of the configured keys are kept in memory, compared in constant time.
The embedded default runs open, on loopback only, and says so at start.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeyMiddleware:
    """Refuse requests without a valid key (401), before any route runs."""

    def __init__(self, app: ASGIApp, *, keys: list[str]) -> None:
        self.app = app
        self._digests = [digest(key) for key in keys if key]

    def _allowed(self, presented: str | None) -> bool:
        if not presented:
            return False
        candidate = digest(presented)
        # compare against every key so timing does not tell which one matched
        matches = [hmac.compare_digest(candidate, known) for known in self._digests]
        return any(matches)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        presented = headers.get("x-api-key")
        authorization = headers.get("authorization", "")
        if presented is None and authorization[:7].lower() == "bearer ":
            presented = authorization[7:].strip()
        if self._allowed(presented):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"detail": "a valid API key is required (Authorization: Bearer <key>)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)
