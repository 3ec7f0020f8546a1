"""The webhook sender's connections: resolved, checked, and made to the checked address.

A check of the URL's host alone is not enough: a name can resolve to an internal
address, and a DNS answer can change between a check and the connection
(rebinding). So the sender's transport resolves the host itself when it opens a
connection, refuses the connection if any resolved address is not allowed
(targets.py), and connects to one of exactly those addresses. TLS still verifies
the certificate against the URL's host name (SNI), and the Host header is the
URL's, as httpx sets it; only the socket's address comes from the check.

Nothing else decides where a webhook goes: no proxy from the environment (it would
be the address connected to), no netrc credentials, no redirects (a 3xx is an
answer, not a new target). An answer's body is read up to `ANSWER_BYTES` (robots
answer a short JSON; nothing larger is needed, and nothing larger is held).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

import httpcore
import httpx

from services.alerting.webhooks.targets import Address, TargetPolicy, parse_address

ANSWER_BYTES = 64 * 1024


class TargetRefused(httpx.ConnectError):
    """The host resolved to an address that webhooks may not be sent to."""


class _Refused(httpcore.ConnectError):
    pass


class _Unresolved(httpcore.ConnectError):
    pass


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to, in the resolver's order, without repeats."""
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as error:
        raise _Unresolved(f"could not resolve the host ({type(error).__name__})") from None
    addresses: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = parse_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    return addresses


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy allows, to those it checked."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        if not addresses:
            raise _Unresolved("the host resolved to no address")
        for address in addresses:
            reason = self._policy.refusal(address)
            if reason is not None:
                raise _Refused(reason)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise _Refused("not a network address")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


# httpcore's errors as httpx's (most specific first), so callers see one family
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (_Refused, TargetRefused),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for core_error, httpx_error in _ERRORS:
            if isinstance(error, core_error):
                raise httpx_error(str(error)) from error
        raise


class CheckedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over a connection pool whose connections are checked."""

    def __init__(self, policy: TargetPolicy, *, max_connections: int) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            http1=True,
            http2=False,
            network_backend=CheckedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, AsyncIterable)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            answer = await self._pool.handle_async_request(core_request)
            try:
                body = await _read_at_most(answer.aiter_stream(), ANSWER_BYTES)
            finally:
                await answer.aclose()
        return httpx.Response(status_code=answer.status, headers=answer.headers, content=body)

    async def aclose(self) -> None:
        await self._pool.aclose()


async def _read_at_most(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    body = bytearray()
    async for chunk in chunks:
        body.extend(chunk[: limit - len(body)])
        if len(body) >= limit:
            break
    return bytes(body)


def webhook_client(
    policy: TargetPolicy, *, timeout_seconds: float, max_connections: int, user_agent: str
) -> httpx.AsyncClient:
    """The sender's client: checked connections, no redirects, nothing from the environment."""
    return httpx.AsyncClient(
        transport=CheckedTransport(policy, max_connections=max_connections),
        timeout=timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": user_agent},
    )
