"""Who is calling: every endpoint but health and metrics resolves the caller first.

A key is sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys of
identities (`drgwatch users`) are looked up by their SHA-256 digest and the caller
kept for a few seconds, so revoking a key takes effect within `CACHE_SECONDS`.
Operator keys from `DRGWATCH_API_KEYS` act as admin (to bootstrap a deployment); only
their digests are kept in memory, compared in constant time.

Production refuses a request without a valid key (401). The embedded default runs on
loopback: a request with no key acts as the local admin, one with a key as its owner,
so scopes can be tried out locally; a wrong key is refused in both modes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from services.access import service as access_service
from services.access.principal import LOCAL_ADMIN, OPERATOR, Principal
from services.api.errors import error_response
from services.api.exceptions import DatabaseUnavailable, NotAuthenticated
from services.storage.engine import is_unavailable

log = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CACHE_SECONDS = 10.0
CACHE_LIMIT = 10_000


def presented_key(scope: Scope) -> str | None:
    """The key a request carries, from X-API-Key or a Bearer authorization."""
    presented: str | None = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            presented = value.decode("latin-1").strip()
        elif name == b"authorization" and presented is None:
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                presented = text[7:].strip()
    return presented or None


class Authentication:
    """Resolve the caller into `request.state.principal`, or answer 401 / 503."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: async_sessionmaker[AsyncSession],
        operator_keys: list[str],
        require_key: bool,
    ) -> None:
        self.app = app
        self._sessions = sessions
        self._operator_digests = [hashlib.sha256(key.encode()).digest() for key in operator_keys]
        self._require_key = require_key
        self._cache: dict[str, tuple[float, Principal]] = {}

    def _operator(self, key: str) -> bool:
        candidate = hashlib.sha256(key.encode()).digest()
        # compare against every key so timing does not tell which one matched
        matches = [hmac.compare_digest(candidate, known) for known in self._operator_digests]
        return any(matches)

    async def _principal(self, key: str) -> Principal | None:
        if self._operator(key):
            return OPERATOR
        digest = access_service.key_digest(key)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._sessions() as db_session:
            principal = await access_service.principal_for_key(db_session=db_session, key=key)
        if principal is not None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_SECONDS, principal)
        return principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        principal: Principal | None
        if key is None:
            principal = None if self._require_key else LOCAL_ADMIN
        else:
            try:
                principal = await self._principal(key)
            except (SQLAlchemyError, OSError) as error:
                if not is_unavailable(error):
                    raise
                log.warning("database unavailable while checking a key: %s", type(error).__name__)
                await error_response(DatabaseUnavailable())(scope, receive, send)
                return
        if principal is None:
            refusal = NotAuthenticated("a valid API key is required (Authorization: Bearer <key>)")
            await error_response(refusal)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
