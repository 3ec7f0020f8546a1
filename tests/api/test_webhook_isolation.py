"""One subscriber's endpoint cannot hold up another's webhooks, nor can its owner make
the sender do unbounded work (test messages, subscriptions)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.webhooks import (
    Hooks,
    Receiver,
    raise_alert,
    running_app,
    running_receiver,
    settings_for,
    until,
)
from tests.faults.report import report

TIMEOUT_SECONDS = 8.0
PER_ENDPOINT = 4


async def _subscribe(
    hooks: Hooks, receiver: Receiver, endpoint: str, key: str, **fields: Any
) -> dict[str, Any]:
    response = await hooks.client.post(
        "/v1/subscriptions",
        json={"url": receiver.url(endpoint), **fields},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secrets[endpoint] = created["secret"]
    return created


async def _latency(hooks: Hooks, receiver: Receiver, endpoint: str, hospital_id: str) -> float:
    """Seconds from an alert's commit to its arrival at `endpoint`."""
    before = len(receiver.got(endpoint))
    started = time.monotonic()
    await raise_alert(hooks.sessions, hospital_id=hospital_id, case_id=uuid.uuid4().hex[:8])
    await until(lambda: len(receiver.got(endpoint)) > before, 3 * TIMEOUT_SECONDS, "the alert")
    return receiver.got(endpoint)[before].at - started


async def test_a_stalled_endpoint_does_not_delay_another_tenants_alerts(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    settings = settings_for(
        postgres_url,
        webhook_timeout_seconds=TIMEOUT_SECONDS,
        webhook_lease_seconds=TIMEOUT_SECONDS + 10,
        webhook_endpoint_concurrency=PER_ENDPOINT,
    )
    async with (
        running_receiver() as stalled,
        running_receiver() as healthy,
        running_app(settings, stalled) as hooks,
    ):
        tenant_a = await hooks.identity("insurance_office", ["H00A"], [])
        tenant_b = await hooks.identity("insurance_office", ["H00B"], [])
        await _subscribe(hooks, stalled, "stall", tenant_a)
        await _subscribe(hooks, healthy, "ward", tenant_b)
        quiet = await _latency(hooks, healthy, "ward", "H00B")

        stalled.stalls["stall"] = asyncio.Event()
        for number in range(32):
            await raise_alert(hooks.sessions, hospital_id="H00A", case_id=f"A{number}")
        await until(lambda: stalled.held.get("stall", 0) >= 1, 5, "tenant A's sends")
        await asyncio.sleep(0.5)  # the sender has taken up all it will for A
        held_for_a = stalled.held["stall"]
        busy = await _latency(hooks, healthy, "ward", "H00B")
        still_held = stalled.held["stall"]
        stalled.stalls["stall"].set()
    report(
        "webhooks: another tenant's alert while one endpoint stalls (32 alerts queued for it)",
        {
            "tenant B, nothing stalled": f"{quiet * 1000:.0f} ms",
            "tenant B, A's endpoint stalled": f"{busy * 1000:.0f} ms",
            "A's requests held open at once": held_for_a,
            "send timeout": f"{TIMEOUT_SECONDS:.0f} s",
        },
    )
    # B's alert went out while A's sends still hung: it did not wait for them
    assert still_held >= 1
    assert busy < TIMEOUT_SECONDS / 2, busy
    assert held_for_a <= PER_ENDPOINT


async def test_test_messages_are_rate_limited_per_subscription(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    settings = settings_for(postgres_url, webhook_tests_per_minute=3)
    async with running_receiver() as receiver, running_app(settings, receiver) as hooks:
        first = await hooks.subscribe("one")
        second = await hooks.subscribe("two")
        answers = [
            (await hooks.client.post(f"/v1/subscriptions/{first['id']}/test")).status_code
            for _ in range(5)
        ]
        refused = await hooks.client.post(f"/v1/subscriptions/{first['id']}/test")
        other = await hooks.client.post(f"/v1/subscriptions/{second['id']}/test")
        await until(lambda: len(receiver.got("one")) == 3, 5, "the allowed test messages")
        await asyncio.sleep(0.5)
    assert answers == [202, 202, 202, 429, 429]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["detail"].startswith("at most 3 test messages")
    assert other.status_code == 202
    assert len(receiver.got("one")) == 3


async def test_an_identity_has_a_bounded_number_of_subscriptions(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    settings = settings_for(postgres_url, webhook_subscriptions_per_identity=3)
    async with running_receiver() as receiver, running_app(settings, receiver) as hooks:
        owner = await hooks.identity("department_head", ["H001"], ["CARD"])
        other = await hooks.identity("department_head", ["H001"], ["CARD"])
        headers = {"Authorization": f"Bearer {owner}"}
        for number in range(3):
            await hooks.subscribe(f"e{number}", owner)
        over = await hooks.client.post(
            "/v1/subscriptions", json={"url": receiver.url("e3")}, headers=headers
        )
        assert over.status_code == 409, over.text
        assert "at most 3 subscriptions" in over.json()["detail"]
        await hooks.subscribe("theirs", other)
        listed = (await hooks.client.get("/v1/subscriptions", headers=headers)).json()
        await hooks.client.delete(f"/v1/subscriptions/{listed['items'][0]['id']}", headers=headers)
        await hooks.subscribe("e3", owner)
