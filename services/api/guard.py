"""What a browser may not make this service do, checked before anything else runs.

In embedded mode a request without a key acts as the local admin, so any web page the
user visits could act as the admin through the browser unless the service tells its
own callers from a page's:

- **Host** must name this service: in embedded mode a loopback name (`localhost`,
  `127.0.0.1`, `[::1]`) or the address the request arrived on, with the port it
  arrived on, or an entry of `DRGWATCH_ALLOWED_HOSTS`; in production the entries of
  `DRGWATCH_ALLOWED_HOSTS` (empty or `*`: any host). A DNS-rebinding page reaches
  127.0.0.1 under its own name, so its requests carry a Host this check refuses (400).
  In production the open paths (health, readiness, metrics) answer any Host: probes
  and scrapers address a pod by its IP, and these paths act for nobody.
- **Origin**, when a browser sends one, must be this service's own (the Host it asked
  for): a page of another origin, or an opaque `null` one, is refused (403). In
  production the Origin is checked only against a configured host list: there every
  request needs a key that a page of another origin cannot present.
- **Sec-Fetch-Site** (embedded mode): a cross-site or same-site request is refused
  unless it is the user's own navigation to a page.
- **Content-Type**: a request with a body must say it is JSON (415 otherwise). A plain
  text or form body needs no CORS preflight, so a page could post one blind; a JSON one
  cannot be sent across origins without the preflight this service never answers.
  Routes that take other media (HL7 v2, FHIR) name theirs in `BODY_MEDIA_TYPES`.

`SecurityHeaders` adds to every answer the headers that keep it out of other pages'
frames and stop content sniffing, and a Content-Security-Policy that lets an API
answer load nothing; a page route (/docs) sets its own policy, which is kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_response
from services.api.exceptions import ForeignOrigin, UnknownHost, UnsupportedBody

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
JSON = frozenset({"application/json"})
# routes whose bodies are not JSON, by path, with the media types each takes
BODY_MEDIA_TYPES: Mapping[str, frozenset[str]] = {
    "/v1/hl7": frozenset({"x-application/hl7-v2+er7", "text/plain"}),
    "/v1/fhir": frozenset({"application/fhir+json", "application/json"}),
}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
SAFE_METHODS = frozenset({"GET", "HEAD"})

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"content-security-policy", API_POLICY.encode()),
)


@dataclass(frozen=True)
class HostRule:
    """Which Host (and so which Origin) this service answers to."""

    embedded: bool
    # entries of DRGWATCH_ALLOWED_HOSTS: (name, port or None for any port)
    allowed: tuple[tuple[str, int | None], ...]
    any_host: bool

    @classmethod
    def of(cls, *, embedded: bool, allowed_hosts: list[str]) -> HostRule:
        entries = []
        for entry in allowed_hosts:
            if entry == "*":
                continue
            name, port = split_host(entry)
            entries.append((name, port))
        any_host = not embedded and (not allowed_hosts or "*" in allowed_hosts)
        return cls(embedded=embedded, allowed=tuple(entries), any_host=any_host)

    def admits(self, name: str, port: int, server: tuple[str, int] | None) -> bool:
        """Whether a request for `name:port` that arrived on `server` is for this service."""
        if self.any_host:
            return True
        for allowed_name, allowed_port in self.allowed:
            if _name_matches(name, allowed_name) and allowed_port in (None, port):
                return True
        if not self.embedded:
            return False
        if server is not None and port != server[1]:
            return False
        return name in LOOPBACK_NAMES or (server is not None and name == _normal(server[0]))

    @property
    def checks_origin(self) -> bool:
        return not self.any_host


def split_host(value: str) -> tuple[str, int | None]:
    """`name[:port]` (IPv6 in brackets) as a lowercased name and the port, if given."""
    value = value.strip()
    port: int | None = None
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        elif rest:
            raise ValueError(f"not a host: {value!r}")
    else:
        name, colon, rest = value.rpartition(":")
        if colon and rest.isdigit() and ":" not in name:
            port = int(rest)
        else:
            name = value
    if not name:
        raise ValueError(f"not a host: {value!r}")
    return _normal(name), port


def _normal(name: str) -> str:
    name = name.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def _name_matches(name: str, allowed: str) -> bool:
    if allowed.startswith("*."):
        return name.endswith(allowed[1:])
    return name == allowed


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class RequestGuard:
    """Refuse requests that are not for this service or that a page sent blind."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rule: HostRule,
        open_paths: frozenset[str],
        body_media_types: Mapping[str, frozenset[str]] = BODY_MEDIA_TYPES,
    ) -> None:
        self.app = app
        self._rule = rule
        self._open_paths = open_paths if not rule.embedded else frozenset()
        self._body_media_types = body_media_types

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open_paths:
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await error_response(refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> UnknownHost | ForeignOrigin | UnsupportedBody | None:
        scheme = str(scope.get("scheme", "http"))
        server = scope.get("server")
        bound: tuple[str, int] | None = None
        if server:
            bound_port = server[1] if server[1] is not None else DEFAULT_PORTS.get(scheme, 80)
            bound = (str(server[0]), int(bound_port))
        host = _header(scope, b"host")
        if host is None:
            if not self._rule.any_host:
                return UnknownHost("Host: a request must name this service's host")
            host_name, host_port = "", DEFAULT_PORTS.get(scheme, 80)
        else:
            try:
                host_name, port = split_host(host)
            except ValueError:
                return UnknownHost("Host: not a host name")
            host_port = port if port is not None else DEFAULT_PORTS.get(scheme, 80)
            if not self._rule.admits(host_name, host_port, bound):
                return UnknownHost(f"Host: this service does not answer to {host_name!r}")
        origin = _header(scope, b"origin")
        if (
            origin is not None
            and self._rule.checks_origin
            and not self._same_origin(origin, host, bound)
        ):
            return ForeignOrigin("Origin: requests from another web page are refused")
        if self._rule.embedded and not self._own_fetch(scope):
            return ForeignOrigin("Sec-Fetch-Site: requests from another web page are refused")
        return self._body_refusal(scope)

    def _same_origin(self, origin: str, host: str | None, bound: tuple[str, int] | None) -> bool:
        """Whether a browser's Origin names the host it asked for, and that host is ours."""
        if origin == "null" or host is None:
            return False
        try:
            parts = urlsplit(origin)
            origin_name = _normal(parts.hostname or "")
            origin_port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
            host_name, host_port = split_host(host)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
            return False
        # the browser built both from one URL, so the Host's implied port is the Origin's
        host_port = host_port if host_port is not None else DEFAULT_PORTS[parts.scheme]
        return (origin_name, origin_port) == (host_name, host_port) and self._rule.admits(
            origin_name, origin_port, bound
        )

    @staticmethod
    def _own_fetch(scope: Scope) -> bool:
        site = _header(scope, b"sec-fetch-site")
        if site is None or site in ("same-origin", "none"):
            return True
        # following a link to a page is the user's own doing; its answer goes to them
        return scope["method"] in SAFE_METHODS and _header(scope, b"sec-fetch-mode") == "navigate"

    def _body_refusal(self, scope: Scope) -> UnsupportedBody | None:
        if scope["method"] not in BODY_METHODS:
            return None
        length = _header(scope, b"content-length")
        has_body = _header(scope, b"transfer-encoding") is not None or (
            length is not None and length.strip() not in ("", "0")
        )
        if not has_body:
            return None
        accepted = self._body_media_types.get(scope["path"], JSON)
        content_type = _header(scope, b"content-type")
        if content_type is None or media_type(content_type) not in accepted:
            return UnsupportedBody(
                f"Content-Type: this endpoint takes {' or '.join(sorted(accepted))}"
            )
        return None


class SecurityHeaders:
    """Add the security headers to every answer that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in SECURITY_HEADERS if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
