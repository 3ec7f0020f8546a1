"""Webhook test support: a real HTTP receiver on 127.0.0.1, the app with fast settings,
identities with real API keys, and alerts written straight into `alerts`."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks import Webhook
from starlette.types import Receive, Scope, Send

from services.access import service as access_service
from services.api.settings import ApiSettings
from services.storage.models import AlertRecord
from tests.api.conftest import running_api

# fast retries for tests; production defaults are documented in services/settings.py
FAST = {
    "webhook_backoff_base_seconds": 0.2,
    "webhook_backoff_max_seconds": 0.5,
    "webhook_max_attempts": 4,
    "webhook_disable_after_failures": 2,
    "webhook_timeout_seconds": 2.0,
    "webhook_lease_seconds": 10.0,
    "webhook_digest_seconds": 1.0,
}
CONTRIBUTORS = [
    {
        "item_code": "STENT",
        "item_name": "药物洗脱支架",
        "category": "consumable",
        "quantity": "1",
        "amount": "37000.00",
    },
    {
        "item_code": "D1",
        "item_name": "Drug one",
        "category": "drug",
        "quantity": "2",
        "amount": "2000.00",
    },
]


@dataclass
class Received:
    endpoint: str
    webhook_id: str
    body: bytes
    payload: Any
    at: float  # time.monotonic()
    status: int  # what the receiver answered
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """Verifies every request with the endpoint's secret, answers as planned, records."""

    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    plans: dict[str, list[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    # endpoints that hold every request until their event is set (a stalled endpoint)
    stalls: dict[str, asyncio.Event] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # requests being held now

    def url(self, endpoint: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{endpoint}"

    def plan(self, endpoint: str, *answers: tuple[int, dict[str, str], bytes] | int) -> None:
        """The next answers of an endpoint (then 200)."""
        self.plans.setdefault(endpoint, []).extend(
            (a, {}, b"") if isinstance(a, int) else a for a in answers
        )

    def got(self, endpoint: str) -> list[Received]:
        return [r for r in self.received if r.endpoint == endpoint]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        endpoint = scope["path"].rsplit("/", 1)[-1]
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            payload = Webhook(self.secrets[endpoint]).verify(body, headers)
        except Exception as error:  # noqa: BLE001 - recorded, the test asserts none
            self.unverified.append(f"{endpoint}: {error!r}")
            payload = None
        planned = self.plans.get(endpoint) or []
        status, extra, answer = planned.pop(0) if planned else (200, {}, b"")
        self.received.append(
            Received(
                endpoint,
                headers.get("webhook-id", ""),
                body,
                payload,
                time.monotonic(),
                status,
                headers,
            )
        )
        stall = self.stalls.get(endpoint)
        if stall is not None:
            self.held[endpoint] = self.held.get(endpoint, 0) + 1
            try:
                await stall.wait()
            finally:
                self.held[endpoint] -= 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in extra.items()],
            }
        )
        await send({"type": "http.response.body", "body": answer})


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    config = uvicorn.Config(receiver, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the receiver did not start"
    receiver.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        for stall in receiver.stalls.values():
            stall.set()
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def new_identity(
    sessions: async_sessionmaker[AsyncSession],
    role: str,
    hospitals: list[str],
    departments: list[str],
) -> str:
    """A new identity with a unique name; its API key."""
    async with sessions() as db_session:
        _, key = await access_service.create_identity(
            db_session=db_session,
            name=f"{role}-{uuid.uuid4().hex[:8]}",
            role=role,
            hospitals=hospitals,
            departments=departments,
        )
        await db_session.commit()
    return key


@dataclass
class Hooks:
    app: FastAPI
    client: httpx.AsyncClient
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    receiver: Receiver

    async def identity(self, role: str, hospitals: list[str], departments: list[str]) -> str:
        """A new identity; its API key."""
        return await new_identity(self.sessions, role, hospitals, departments)

    async def subscribe(
        self, endpoint: str, key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A subscription to the receiver's `endpoint`, its secret registered there."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await self.client.post(
            "/v1/subscriptions",
            json={"url": self.receiver.url(endpoint), **fields},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        self.receiver.secrets[endpoint] = created["secret"]
        return created

    async def deliveries(
        self, subscription_id: str, key: str | None = None
    ) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await self.client.get(
            f"/v1/subscriptions/{subscription_id}/deliveries", headers=headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def deliveries_when(
        self,
        subscription_id: str,
        condition: Callable[[list[dict[str, Any]]], bool],
        key: str | None = None,
        timeout: float = 15.0,
    ) -> list[dict[str, Any]]:
        """The deliveries once `condition` holds (attempts are recorded after the answer)."""
        started = time.monotonic()
        while True:
            items = await self.deliveries(subscription_id, key)
            if condition(items):
                return items
            if time.monotonic() - started > timeout:
                raise AssertionError(f"deliveries never matched: {items}")
            await asyncio.sleep(0.05)

    async def subscription(self, subscription_id: str, key: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await self.client.get(f"/v1/subscriptions/{subscription_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def disabled(self, subscription_id: str, timeout: float = 3.0) -> dict[str, Any]:
        """The subscription once it is disabled."""
        started = time.monotonic()
        while (state := await self.subscription(subscription_id))["enabled"]:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"never disabled: {state}")
            await asyncio.sleep(0.05)
        return state


def settled(items: list[dict[str, Any]]) -> bool:
    return bool(items) and all(item["status"] != "pending" for item in items)


def settings_for(postgres_url: str, **over: Any) -> ApiSettings:
    return ApiSettings(database_url=postgres_url, topic_prefix="drgwatch-test", **{**FAST, **over})


@contextlib.asynccontextmanager
async def running_app(settings: ApiSettings, receiver: Receiver) -> AsyncIterator[Hooks]:
    """The real app with its lifespan (and so its dispatcher) running."""
    async with running_api(settings) as api:
        yield Hooks(api.app, api.client, api.engine, api.sessions, receiver)


_alert_counter = 0


async def raise_alert(
    sessions: async_sessionmaker[AsyncSession],
    *,
    level: str = "red",
    previous_level: str = "yellow",
    transition: str = "escalated",
    hospital_id: str = "H001",
    case_id: str = "C1",
    department: str | None = "CARD",
    kind: str = "level",
) -> str:
    """An alert as the projector (or the target watch) writes it; its alert_id. A
    forecast alert carries a projection of 45000.00; a target alert is about November
    2026's total cost of its department, projected at 45000.00; a rule alert is a repeated
    CT found by repeat-exam (version 1) on a case, or, without a case, the department's
    cost per case up 20% in November 2026 (cost-per-case-growth)."""
    global _alert_counter
    _alert_counter += 1
    alert_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    async with sessions() as db_session:
        db_session.add(
            AlertRecord(
                alert_id=alert_id,
                hospital_id=hospital_id,
                case_id=case_id,
                department=department,
                drg_code=None if kind == "target" else "FM15",
                level=level,
                previous_level=previous_level,
                transition=transition,
                total_cost=Decimal("41350.00"),
                standard_cost=Decimal("40400.83"),
                ratio=Decimal("1.0235"),
                event_id=f"E{_alert_counter}",
                occurred_at=now,
                raised_at=now,
                top_contributors=CONTRIBUTORS,
                kind=kind,
                projected_total=Decimal("45000.00") if kind in ("forecast", "target") else None,
                projected_ratio=Decimal("1.1139") if kind in ("forecast", "target") else None,
                target_period="2026-11" if kind == "target" else None,
                target_measure="total_cost" if kind == "target" else None,
                **(_rule_columns(case_id, department) if kind == "rule" else {}),
            )
        )
        await db_session.commit()
    return alert_id


def _rule_columns(case_id: str, department: str | None) -> dict[str, Any]:
    if case_id:
        return {
            "rule_id": "repeat-exam",
            "rule_version": 1,
            "rule_period": "2026-11-22/CT01",
            "detail": {
                "item_code": "CT01",
                "rule_name": {"zh": "重复检查检验", "en": "Repeated exam or lab"},
            },
            "text_zh": "头颅CT（CT01）于 2026-11-22 再次收费，3 天内已于 2026-11-20 收费",
            "text_en": "头颅CT (CT01) charged again on 2026-11-22, within 3 days of 2026-11-20",
        }
    return {
        "rule_id": "cost-per-case-growth",
        "rule_version": 1,
        "rule_period": "2026-11",
        "detail": {
            "growth": "0.2000",
            "rule_name": {"zh": "科室例均费用增长过快", "en": "Department cost per case rising"},
        },
        "text_zh": f"{department} 2026-11 例均费用 12000.00 元，较去年同期 10000.00 元上升 20%，"
        "超过 15%",
        "text_en": f"{department} cost per case in 2026-11 is 12000.00, up 20% on the same period"
        " last year (10000.00), more than 15%",
    }


async def until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait (bounded) until `condition()`; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started
