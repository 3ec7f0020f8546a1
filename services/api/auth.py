"""Who is calling: every endpoint but health, metrics and the dashboard's page resolves the
caller first.

A key is sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys of
identities (`drgwatch users`) are looked up by their SHA-256 digest and the caller
kept for a few seconds, so revoking a key takes effect within `CACHE_SECONDS`.
Operator keys from `DRGWATCH_API_KEYS` act as admin (to bootstrap a deployment); only
their digests are kept in memory, compared in constant time.

Production refuses a request without a valid key (401). The embedded default runs on
loopback: a request with no key acts as the local admin, one with a key as its owner,
so scopes can be tried out locally; a wrong key is refused in both modes.

Wrong keys are rate-limited per client address (`auth_failures_burst`, then
`auth_failures_per_minute`): once an address has used up its budget, a key from it
that is neither an operator key, nor a caller cached here, nor a key that was valid
within the last `RECENTLY_VALID_SECONDS` is answered 429 with Retry-After without
asking the database, so guessing costs the guesser and not the database.

Long-lived responses (the live stream) ask again who their caller is through
`recheck_caller` (in the request state), which bypasses the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from services.access import service as access_service
from services.access.principal import LOCAL_ADMIN, OPERATOR, Principal
from services.api.errors import error_response
from services.api.exceptions import DatabaseUnavailable, NotAuthenticated, TooManyWrongKeys
from services.api.ratelimit import TokenBuckets
from services.api.ui import is_page_path
from services.storage.engine import is_unavailable

log = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CACHE_SECONDS = 10.0
CACHE_LIMIT = 10_000
# a key seen valid this recently is still looked up from a rate-limited address
RECENTLY_VALID_SECONDS = 3600.0
CallerCheck = Callable[[], Awaitable[Principal | None]]


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
        failures_burst: int,
        failures_per_minute: float,
    ) -> None:
        self.app = app
        self._sessions = sessions
        self._operator_digests = [hashlib.sha256(key.encode()).digest() for key in operator_keys]
        self._require_key = require_key
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._recently_valid: dict[str, float] = {}
        self._failures = TokenBuckets(burst=failures_burst, per_minute=failures_per_minute)

    def _operator(self, key: str) -> bool:
        candidate = hashlib.sha256(key.encode()).digest()
        # compare against every key so timing does not tell which one matched
        matches = [hmac.compare_digest(candidate, known) for known in self._operator_digests]
        return any(matches)

    def _cached(self, digest: str, now: float) -> Principal | None:
        cached = self._cache.get(digest)
        return cached[1] if cached is not None and cached[0] > now else None

    async def _looked_up(self, key: str, digest: str, now: float) -> Principal | None:
        """The key's caller as the database says now; the cache follows the answer."""
        async with self._sessions() as db_session:
            principal = await access_service.principal_for_key(db_session=db_session, key=key)
        if principal is None:
            self._cache.pop(digest, None)
            self._recently_valid.pop(digest, None)
            return None
        for remembered in (self._cache, self._recently_valid):
            if len(remembered) >= CACHE_LIMIT:
                remembered.clear()
        self._cache[digest] = (now + CACHE_SECONDS, principal)
        self._recently_valid[digest] = now + RECENTLY_VALID_SECONDS
        return principal

    async def current(self, key: str | None) -> Principal | None:
        """Who presents `key` right now, asking the database (no cache): for long-lived
        responses that must end when their key is revoked."""
        if key is None:
            return None if self._require_key else LOCAL_ADMIN
        if self._operator(key):
            return OPERATOR
        return await self._looked_up(key, access_service.key_digest(key), time.monotonic())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the dashboard's views and assets hold no data; the endpoints they call check the key
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or is_page_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        principal: Principal | None = None
        if key is None:
            principal = None if self._require_key else LOCAL_ADMIN
        elif self._operator(key):
            principal = OPERATOR
        else:
            now = time.monotonic()
            digest = access_service.key_digest(key)
            principal = self._cached(digest, now)
            if principal is None:
                address = _client_address(scope)
                wait = self._failures.wait(address, now)
                if wait > 0 and self._recently_valid.get(digest, 0.0) <= now:
                    await error_response(TooManyWrongKeys(math.ceil(wait)))(scope, receive, send)
                    return
                try:
                    principal = await self._looked_up(key, digest, now)
                except (SQLAlchemyError, OSError) as error:
                    if not is_unavailable(error):
                        raise
                    log.warning(
                        "database unavailable while checking a key: %s", type(error).__name__
                    )
                    await error_response(DatabaseUnavailable())(scope, receive, send)
                    return
                if principal is None:
                    self._failures.take(address, now)
        if principal is None:
            refusal = NotAuthenticated("a valid API key is required (Authorization: Bearer <key>)")
            await error_response(refusal)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["recheck_caller"] = _recheck(self, key)
        await self.app(scope, receive, send)


def _recheck(authentication: Authentication, key: str | None) -> CallerCheck:
    async def recheck() -> Principal | None:
        return await authentication.current(key)

    return recheck


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
