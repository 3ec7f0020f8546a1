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

People sign in with a name and password (`POST /v1/session`, services/api/signin) and
then call with the `drgwatch_session` cookie. The caller is, in this order: the owner of
the API key the request presents; else the person whose live session the cookie opens
(looked up on every request, so that signing out, a disabled identity or a changed
password takes effect at once); else, in embedded mode, the local admin; else nobody
(401). A cookie-authenticated request that may change something (any method but GET,
HEAD, OPTIONS) must carry the session's CSRF token in `X-CSRF-Token` (403 otherwise):
the cookie goes with every request the browser makes, the token only with those the
page itself makes. Signing in (POST /v1/session) needs none: the password is the proof.
`/v1/session` itself answers every caller, signed in or not, and refuses no key: it is
where a page asks whether it must show the sign-in form.

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
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from services.access import service as access_service
from services.access import sessions as sign_in_sessions
from services.access.principal import LOCAL_ADMIN, OPERATOR, Principal
from services.access.sessions import ActiveSession, Lifetimes
from services.api.errors import error_response
from services.api.exceptions import (
    CsrfTokenRefused,
    DatabaseUnavailable,
    NotAuthenticated,
    TooManyWrongKeys,
)
from services.api.ratelimit import TokenBuckets
from services.api.ui import is_page_path
from services.errors import DrgwatchError
from services.storage.engine import is_unavailable

log = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SESSION_PATH = "/v1/session"
SESSION_COOKIE = "drgwatch_session"
CSRF_HEADER = b"x-csrf-token"
# methods that change nothing: a cookie suffices for them
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CACHE_SECONDS = 10.0
CACHE_LIMIT = 10_000
# a key seen valid this recently is still looked up from a rate-limited address
RECENTLY_VALID_SECONDS = 3600.0
CallerCheck = Callable[[], Awaitable[Principal | None]]
Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """Now, in UTC: the sessions' clock (a test passes its own to create_app)."""
    return datetime.now(UTC)


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


def session_token(scope: Scope) -> str | None:
    """The sign-in session token of the request's `drgwatch_session` cookie, if any."""
    for name, value in scope["headers"]:
        if name == b"cookie":
            token = cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE)
            if token:
                return token
    return None


def _csrf_refusal(scope: Scope, active: ActiveSession) -> CsrfTokenRefused | None:
    """Why a cookie-authenticated request may not go on, or None if it may."""
    if scope["method"] in READ_METHODS:
        return None
    if scope["path"] == SESSION_PATH and scope["method"] == "POST":
        return None  # signing in anew: the password is the proof
    presented = None
    for name, value in scope["headers"]:
        if name == CSRF_HEADER:
            presented = value
    if not presented:
        return CsrfTokenRefused(
            "X-CSRF-Token: missing; a signed-in request that changes something needs the"
            " session's CSRF token (GET /v1/session gives it)"
        )
    if not hmac.compare_digest(presented, active.csrf_token.encode()):
        return CsrfTokenRefused("X-CSRF-Token: does not match this session's CSRF token")
    return None


class Authentication:
    """Resolve the caller into `request.state.principal` (and a signed-in person's session
    into `request.state.sign_in_session`), or answer 401 / 403 / 429 / 503."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: async_sessionmaker[AsyncSession],
        operator_keys: list[str],
        require_key: bool,
        failures_burst: int,
        failures_per_minute: float,
        lifetimes: Lifetimes,
        clock: Clock,
    ) -> None:
        self.app = app
        self._sessions = sessions
        self._lifetimes = lifetimes
        self._clock = clock
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

    async def signed_in(self, token: str, *, touch: bool) -> ActiveSession | None:
        """The live session a cookie token opens now, asking the database."""
        async with self._sessions() as db_session:
            active = await sign_in_sessions.active_session(
                db_session=db_session,
                token=token,
                now=self._clock(),
                lifetimes=self._lifetimes,
                touch=touch,
            )
            await db_session.commit()
        return active

    async def _key_caller(self, scope: Scope, key: str) -> Principal | DrgwatchError:
        """The owner of an API key, or the refusal to answer (wrong key, rate limit)."""
        if self._operator(key):
            return OPERATOR
        now = time.monotonic()
        digest = access_service.key_digest(key)
        principal = self._cached(digest, now)
        if principal is not None:
            return principal
        address = _client_address(scope)
        wait = self._failures.wait(address, now)
        if wait > 0 and self._recently_valid.get(digest, 0.0) <= now:
            return TooManyWrongKeys(math.ceil(wait))
        principal = await self._looked_up(key, digest, now)
        if principal is None:
            self._failures.take(address, now)
            return NotAuthenticated("the API key is not valid")
        return principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the dashboard's views and assets hold no data; the endpoints they call check the key
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or is_page_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        token = session_token(scope) if key is None else None
        principal: Principal | None = None
        active: ActiveSession | None = None
        refusal: DrgwatchError | None = None
        try:
            if key is not None:
                caller = await self._key_caller(scope, key)
                if isinstance(caller, Principal):
                    principal = caller
                else:
                    refusal = caller
            elif token is not None:
                active = await self.signed_in(token, touch=True)
                if active is not None:
                    principal = active.principal
                    refusal = _csrf_refusal(scope, active)
        except (SQLAlchemyError, OSError) as error:
            if not is_unavailable(error):
                raise
            log.warning("database unavailable while checking a caller: %s", type(error).__name__)
            await error_response(DatabaseUnavailable())(scope, receive, send)
            return
        if principal is None and refusal is None and not self._require_key:
            principal = LOCAL_ADMIN
        if principal is None and refusal is None:
            refusal = NotAuthenticated(
                "a valid API key (Authorization: Bearer <key>) or a signed-in session"
                " (POST /v1/session) is required"
            )
        if (
            refusal is not None
            and scope["path"] == SESSION_PATH
            and not isinstance(refusal, CsrfTokenRefused)
        ):
            # the session endpoint answers anyone: a wrong key there is no one signed in
            principal, active = None, None
        elif refusal is not None:
            await error_response(refusal)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["sign_in_session"] = active
        # a cookie whose session has ended: the session endpoint clears it
        state["ended_session_cookie"] = token is not None and active is None
        state["recheck_caller"] = _recheck(self, key, token if active is not None else None)
        await self.app(scope, receive, send)


def _recheck(authentication: Authentication, key: str | None, token: str | None) -> CallerCheck:
    async def recheck() -> Principal | None:
        if token is not None:
            active = await authentication.signed_in(token, touch=False)
            return None if active is None else active.principal
        return await authentication.current(key)

    return recheck


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
