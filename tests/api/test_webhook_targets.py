"""Where the sender really connects: local listeners record every connection made to
them, and the delivery log says what happened without describing the network.

Subscriptions here are written straight into the table, as ones made before the
address checks existed (or naming a host that resolves somewhere internal) would be:
the sender must check each message's target itself, when it connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncEngine

from services.access.principal import OPERATOR
from services.alerting.webhooks import dispatcher
from services.alerting.webhooks.service import new_secret
from services.storage.models import WebhookSubscription
from tests.api.helpers import OPERATOR_KEY
from tests.api.webhooks import Hooks, raise_alert, running_app, running_receiver, settings_for


@dataclass
class Listener:
    """A TCP (optionally TLS) listener on 127.0.0.1 that records who connected."""

    port: int = 0
    connections: int = 0
    server_names: list[str | None] = field(default_factory=list)


@contextlib.asynccontextmanager
async def listening(tls: ssl.SSLContext | None = None) -> AsyncIterator[Listener]:
    listener = Listener()
    if tls is not None:

        def record_name(_socket: Any, server_name: str | None, _context: Any) -> None:
            listener.server_names.append(server_name)

        tls.sni_callback = record_name

    async def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.connections += 1
        writer.close()

    if tls is None:
        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    else:
        # a raw listener: count the TCP connection, then let TLS see the ClientHello
        raw = socket.socket()
        raw.bind(("127.0.0.1", 0))
        raw.listen()
        raw.setblocking(False)

        async def serve() -> None:
            loop = asyncio.get_running_loop()
            while True:
                conn, _ = await loop.sock_accept(raw)
                listener.connections += 1
                asyncio.get_running_loop().run_in_executor(None, _handshake, tls, conn)

        task = asyncio.create_task(serve())
    listener.port = (server.sockets[0] if tls is None else raw).getsockname()[1]
    try:
        yield listener
    finally:
        if tls is None:
            server.close()
        else:
            task.cancel()
            raw.close()


def _handshake(context: ssl.SSLContext, connection: socket.socket) -> None:
    connection.setblocking(True)
    connection.settimeout(5)
    with contextlib.suppress(OSError), context.wrap_socket(connection, server_side=True):
        pass
    connection.close()


def self_signed(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-trusted.example")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


async def subscribe_directly(hooks: Hooks, url: str) -> str:
    """A subscription row as an older release could have stored it; its id."""
    now = dt.datetime.now(dt.UTC)
    subscription_id = f"sub_{abs(hash((url, now))) % 16**24:024x}"
    async with hooks.sessions() as db_session:
        db_session.add(
            WebhookSubscription(
                id=subscription_id,
                identity_id=OPERATOR.identity_id,
                url=url,
                secret=new_secret(),
                format="standard",
                hospitals=[],
                departments=[],
                min_level="blue",
                blue_digest=False,
                enabled=True,
                consecutive_failures=0,
                after_seq=0,
                created_at=now,
                updated_at=now,
            )
        )
        await db_session.commit()
    return subscription_id


async def first_attempts(hooks: Hooks, ids: list[str], key: str | None) -> list[Any]:
    """The first recorded attempt of each subscription's delivery (bounded wait)."""
    found: dict[str, Any] = {}
    for _ in range(200):
        for subscription_id in ids:
            if subscription_id in found:
                continue
            items = await hooks.deliveries(subscription_id, key)
            logged = [attempt for item in items for attempt in item["attempt_log"]]
            if logged:
                found[subscription_id] = logged[0]
        if len(found) == len(ids):
            return [found[subscription_id] for subscription_id in ids]
        await asyncio.sleep(0.05)
    raise AssertionError(f"attempts recorded for {len(found)} of {len(ids)} subscriptions")


# 127.0.0.1 (and 0.0.0.0, which reaches it) as the probe wrote it, and by name
INTERNAL_FORMS = [
    "https://127.0.0.1:{port}/",
    "https://2130706433:{port}/",
    "https://0x7f000001:{port}/",
    "https://127.1:{port}/",
    "https://0:{port}/",
    "https://[::ffff:127.0.0.1]:{port}/",
    "https://[::1]:{port}/",
    "https://localhost:{port}/",
]


async def test_the_sender_never_connects_to_an_internal_address_in_any_notation(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    settings = settings_for(postgres_url, mode="production", api_keys=OPERATOR_KEY)
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    async with (
        listening() as listener,
        running_receiver() as receiver,
        running_app(settings, receiver) as hooks,
    ):
        ids = [
            await subscribe_directly(hooks, form.format(port=listener.port))
            for form in INTERNAL_FORMS
        ]
        await raise_alert(hooks.sessions)
        attempts = await first_attempts(hooks, ids, OPERATOR_KEY)
        tested = await hooks.client.post(f"/v1/subscriptions/{ids[1]}/test", headers=headers)
        assert tested.status_code == 202
        await asyncio.sleep(0.5)
    assert listener.connections == 0
    assert {attempt["error"] for attempt in attempts} == {dispatcher.REFUSED_TEXT}
    assert {attempt["status_code"] for attempt in attempts} == {None}


async def test_a_listed_network_is_reached_at_the_checked_address_with_its_name_kept(
    postgres_url: str, pg_engine: AsyncEngine, tmp_path: Path
) -> None:
    """127.0.0.0/8 stands in for a hospital intranet here. Every notation reaches the
    same listener; the name's TLS handshake still asks for the name (SNI)."""
    settings = settings_for(
        postgres_url,
        mode="production",
        api_keys=OPERATOR_KEY,
        webhook_allowed_targets="127.0.0.0/8",
    )
    forms = [
        "https://localhost:{port}/his",
        "https://2130706433:{port}/his",
        "https://0x7f000001:{port}/his",
        "https://127.1:{port}/his",
    ]
    async with (
        listening(self_signed(tmp_path)) as listener,
        running_receiver() as receiver,
        running_app(settings, receiver) as hooks,
    ):
        ids = [await subscribe_directly(hooks, form.format(port=listener.port)) for form in forms]
        await raise_alert(hooks.sessions)
        attempts = await first_attempts(hooks, ids, OPERATOR_KEY)
    assert listener.connections >= len(forms)
    assert "localhost" in listener.server_names
    # the certificate is not trusted: refused like any connection that failed, no detail
    assert {attempt["error"] for attempt in attempts} == {dispatcher.NO_ANSWER_TEXT}


async def test_a_connection_keeps_the_urls_host_header(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    async with (
        running_receiver() as receiver,
        running_app(settings_for(postgres_url), receiver) as hooks,
    ):
        subscription = await hooks.client.post(
            "/v1/subscriptions", json={"url": f"http://localhost:{receiver.port}/hooks/named"}
        )
        assert subscription.status_code == 201, subscription.text
        receiver.secrets["named"] = subscription.json()["secret"]
        await raise_alert(hooks.sessions)
        for _ in range(100):
            if receiver.got("named"):
                break
            await asyncio.sleep(0.05)
    [got] = receiver.got("named")
    assert got.headers["host"] == f"localhost:{receiver.port}"
    assert receiver.unverified == []


async def test_the_delivery_log_does_not_tell_a_closed_port_from_an_open_one(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with (
        listening() as silent,  # accepts, then closes without a word (a non-HTTP service)
        running_receiver() as receiver,
        running_app(settings_for(postgres_url), receiver) as hooks,
    ):
        ids = [
            await subscribe_directly(hooks, f"https://127.0.0.1:{closed_port}/"),
            # something listens here, but it does not speak TLS
            await subscribe_directly(hooks, f"https://127.0.0.1:{receiver.port}/"),
            await subscribe_directly(hooks, f"http://127.0.0.1:{silent.port}/"),
        ]
        await raise_alert(hooks.sessions)
        attempts = await first_attempts(hooks, ids, None)
    assert {attempt["error"] for attempt in attempts} == {dispatcher.NO_ANSWER_TEXT}
    assert silent.connections >= 1
    for attempt in attempts:
        assert str(closed_port) not in attempt["error"]
        assert str(receiver.port) not in attempt["error"]
        assert "127.0.0.1" not in attempt["error"]
