"""Request body limits, per route, enforced before a body is read.

Every route has a limit: most take small JSON (or nothing) and get DEFAULT_BODY_LIMIT;
the few that take more are named here by their route template. `BodyLimit` refuses a
body whose Content-Length is over the limit without reading any of it, and one sent
without a length (chunked) as soon as the bytes received pass the limit, so an
oversized body is never held in memory whole, whichever route it was sent to.

POST /v1/events, POST /v1/fhir and POST /v1/hl7 read their own bodies within
EVENTS_BODY_LIMIT, the same way, because a refused submission must be kept as a dead
letter, which needs the database.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_response
from services.api.exceptions import RequestBodyTooLarge

DEFAULT_BODY_LIMIT = 64 * 1024
EVENTS_BODY_LIMIT = 5 * 1024 * 1024
EVENTS_PATH = "/v1/events"
FHIR_PATH = "/v1/fhir"
HL7_PATH = "/v1/hl7"
# route template -> its limit, for the routes that take more than small JSON
BODY_LIMITS: Mapping[str, int] = {
    # the schema allows 20,000 groups with names of 200 characters
    "/v1/drg-catalogues": 16 * 1024 * 1024,
    # up to 50,000 items (a province's list of services, drugs and consumables), each
    # with two names: about 300 bytes an item in practice
    "/v1/chargemasters": 32 * 1024 * 1024,
    # up to 200 proposed items, each with a name of up to 200 characters
    "/v1/hospitals/{hospital_id}/cases/{case_id}/precheck": 512 * 1024,
    EVENTS_PATH: EVENTS_BODY_LIMIT,
    FHIR_PATH: EVENTS_BODY_LIMIT,
    # HL7 v2: a batch of up to 1000 messages
    HL7_PATH: EVENTS_BODY_LIMIT,
}
# (method, route template) of the routes that read their body themselves, within their limit
SELF_LIMITED = frozenset({("POST", EVENTS_PATH), ("POST", FHIR_PATH), ("POST", HL7_PATH)})


def body_limit(template: str) -> int:
    """The body limit of a route, by its template."""
    return BODY_LIMITS.get(template, DEFAULT_BODY_LIMIT)


class BodyLimit:
    """Refuse a request body over its route's limit with 413, before reading it whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # matched as the router will match them (the middleware runs before routing)
        self._limits = [
            (compile_path(template)[0], body_limit(template)) for template in BODY_LIMITS
        ]
        self._self_limited = [
            (method, compile_path(template)[0]) for method, template in SELF_LIMITED
        ]

    def limit_of(self, method: str, path: str) -> int | None:
        """The body limit of the route a request goes to (None: the route applies its own)."""
        if any(method == own and pattern.match(path) for own, pattern in self._self_limited):
            return None
        for pattern, limit in self._limits:
            if pattern.match(path):
                return limit
        return DEFAULT_BODY_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await error_response(RequestBodyTooLarge(limit))(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise RequestBodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # whatever the app made of the interrupted read, the answer is the 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await error_response(RequestBodyTooLarge(limit))(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except RequestBodyTooLarge:
            if started:
                raise
            await error_response(RequestBodyTooLarge(limit))(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
