"""People sign in: `GET`, `POST`, `DELETE /v1/session`.

The authentication middleware (services/api/auth.py) has already resolved the caller:
an API key's owner, a signed-in person (with their session), the embedded local admin,
or, on this path only, nobody. These routes say which, open a session from a name and
password, and end one.

A refused sign-in answers one message whatever the reason (unknown name, wrong password,
disabled, no password), is logged at WARNING with the name, the client address and the
reason (never the password), and is counted in `drgwatch_sign_in_failures_total`. After
`sign_in_failures_per_name` failures of a name, or `sign_in_failures_per_address` from
an address, each further failure blocks them for twice as long (1 s, 2 s, 4 s, ... up to
15 minutes): a sign-in then is 429 with Retry-After, without a password check.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from services.access import sessions as sign_in_sessions
from services.access.exceptions import SignInRefused
from services.access.principal import Principal
from services.access.schemas import SessionIdentity, SessionOut, SignInIn
from services.access.sessions import ActiveSession
from services.api.auth import SESSION_COOKIE, SESSION_PATH, Clock
from services.api.deps import SessionDep
from services.api.exceptions import TooManySignIns
from services.api.openapi import ErrorBody
from services.api.ratelimit import SignInThrottle
from services.api.settings import ApiSettings
from services.metrics import SIGN_IN_FAILURES

log = logging.getLogger(__name__)
router = APIRouter(tags=["sign-in"])


def _session_out(
    settings: ApiSettings, principal: Principal | None, active: ActiveSession | None
) -> SessionOut:
    identity = None
    if principal is not None:
        identity = SessionIdentity(
            identity_id=principal.identity_id,
            name=principal.name,
            role=principal.role,
            hospitals=sorted(principal.hospitals),
            departments=sorted(principal.departments),
        )
    return SessionOut(
        signed_in=principal is not None,
        sign_in_required=settings.mode == "production",
        mode=settings.mode,
        identity=identity,
        csrf_token=active.csrf_token if active is not None else None,
        expires_at=active.expires_at if active is not None else None,
        timezone=settings.timezone,
    )


def _forget_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


@router.get(SESSION_PATH, response_model=SessionOut)
async def get_session(request: Request, response: Response) -> SessionOut:
    """Who is calling: a signed-in person (with the CSRF token their page sends on every
    change), an API key's owner, the embedded local admin, or nobody (production: sign
    in first). Answers everyone; a cookie whose session has ended is cleared."""
    active: ActiveSession | None = request.state.sign_in_session
    if request.state.ended_session_cookie:
        _forget_cookie(request, response)
    settings: ApiSettings = request.app.state.settings
    return _session_out(settings, request.state.principal, active)


@router.post(
    SESSION_PATH,
    response_model=SessionOut,
    responses={
        401: {"model": ErrorBody, "description": "the name or the password is wrong"},
        429: {
            "model": ErrorBody,
            "description": "too many failed sign-ins for this name or from this address",
        },
    },
)
async def sign_in(
    request: Request,
    response: Response,
    credentials: Annotated[SignInIn, Body()],
    db_session: SessionDep,
) -> SessionOut:
    """Sign a person in with their name and password: sets the `drgwatch_session` cookie
    (HttpOnly, SameSite=Strict, Path=/, Secure over https) and answers as GET does."""
    settings: ApiSettings = request.app.state.settings
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    clock: Clock = request.app.state.clock
    now = clock()
    moment = now.timestamp()
    address = _client_address(request)
    name_key, address_key = f"name:{credentials.name.strip().lower()}", f"address:{address}"
    wait = max(throttle.wait(name_key, moment), throttle.wait(address_key, moment))
    if wait > 0:
        _log_refusal(credentials.name, address, "throttled")
        raise TooManySignIns(math.ceil(wait))
    try:
        active, token = await sign_in_sessions.sign_in(
            db_session=db_session,
            name=credentials.name,
            password=credentials.password,
            now=now,
            lifetimes=settings.session_lifetimes,
        )
    except SignInRefused as refusal:
        throttle.failed(name_key, moment, free=settings.sign_in_failures_per_name)
        throttle.failed(address_key, moment, free=settings.sign_in_failures_per_address)
        _log_refusal(credentials.name, address, refusal.reason)
        await db_session.rollback()
        raise
    throttle.succeeded(name_key)
    throttle.succeeded(address_key)
    earlier: ActiveSession | None = request.state.sign_in_session
    if earlier is not None:  # a new sign-in replaces the browser's earlier session
        await sign_in_sessions.end(db_session=db_session, session_id=earlier.session_id, now=now)
    await db_session.commit()
    log.info("signed in: %r from %s", active.principal.name, address)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return _session_out(settings, active.principal, active)


@router.delete(SESSION_PATH, status_code=204, response_class=Response)
async def sign_out(request: Request, db_session: SessionDep) -> Response:
    """Sign out: the session ends on the server and its cookie is cleared (with no
    session, only the cookie is cleared)."""
    active: ActiveSession | None = request.state.sign_in_session
    if active is not None:
        clock: Clock = request.app.state.clock
        await sign_in_sessions.end(db_session=db_session, session_id=active.session_id, now=clock())
        await db_session.commit()
        log.info("signed out: %r", active.principal.name)
    response = Response(status_code=204)
    _forget_cookie(request, response)
    return response


def _log_refusal(name: str, address: str, reason: str) -> None:
    SIGN_IN_FAILURES.labels(reason).inc()
    # the name as typed, quoted (it is the caller's text); the password never
    log.warning("sign-in refused: name %r from %s: %s", name[:200], address, reason)
