"""Webhook subscriptions end to end: real receiver on 127.0.0.1, real PostgreSQL, the
app's own dispatcher. Every wait is bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.storage.engine import session_factory
from tests.api.webhooks import (
    Hooks,
    Receiver,
    raise_alert,
    running_app,
    running_receiver,
    settings_for,
    settled,
    until,
)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
async def hooks(
    postgres_url: str, pg_engine: AsyncEngine, receiver: Receiver
) -> AsyncIterator[Hooks]:
    async with running_app(settings_for(postgres_url), receiver) as app:
        yield app
    assert receiver.unverified == [], "every request must carry a valid signature"


def delivery(items: list[dict[str, Any]], webhook_id: str) -> dict[str, Any]:
    return next(item for item in items if item["id"] == webhook_id)


async def test_an_alert_reaches_the_endpoint_signed_within_a_second(hooks: Hooks) -> None:
    subscription = await hooks.subscribe("ward")
    assert subscription["secret"].startswith("whsec_")
    assert subscription["min_level"] == "blue"  # the local admin's default
    started = time.monotonic()
    alert_id = await raise_alert(hooks.sessions)
    await until(lambda: bool(hooks.receiver.got("ward")), 3, "the alert")
    elapsed = hooks.receiver.got("ward")[0].at - started
    assert elapsed < 0.9, f"took {elapsed:.3f} s"

    [got] = hooks.receiver.got("ward")
    assert got.payload["type"] == "alert.escalated"
    assert got.payload["data"]["alert_id"] == alert_id
    assert got.payload["data"]["total_cost"] == "41350.00"
    assert got.payload["data"]["ratio"] == "1.0235"
    assert got.webhook_id.startswith("msg_")
    [item] = await hooks.deliveries_when(subscription["id"], settled)
    assert item["id"] == got.webhook_id
    assert item["status"] == "delivered" and item["attempts"] == 1
    assert item["alert_id"] == alert_id
    assert [a["status_code"] for a in item["attempt_log"]] == [200]

    # a fan-out re-run (cursor moved back) does not duplicate the delivery
    async with hooks.engine.begin() as connection:
        await connection.execute(text("UPDATE webhook_subscriptions SET after_seq = 0"))
    await raise_alert(hooks.sessions, case_id="C2")
    await until(lambda: len(hooks.receiver.got("ward")) == 2, 3, "the second alert")
    assert len(await hooks.deliveries_when(subscription["id"], settled)) == 2
    assert len({r.webhook_id for r in hooks.receiver.got("ward")}) == 2


async def test_a_failing_endpoint_gets_it_on_the_third_attempt_with_the_same_id(
    hooks: Hooks,
) -> None:
    subscription = await hooks.subscribe("flaky")
    hooks.receiver.plan("flaky", 500, 500)
    await raise_alert(hooks.sessions)
    await until(lambda: len(hooks.receiver.got("flaky")) == 3, 5, "three attempts")

    got = hooks.receiver.got("flaky")
    assert [r.status for r in got] == [500, 500, 200]
    assert len({r.webhook_id for r in got}) == 1
    assert len({r.body for r in got}) == 1  # the same bytes every time
    [item] = await hooks.deliveries_when(subscription["id"], settled)
    assert item["status"] == "delivered"
    assert item["attempts"] == 3
    assert [a["status_code"] for a in item["attempt_log"]] == [500, 500, 200]
    assert item["attempt_log"][0]["error"] == "HTTP 500"


async def test_retry_after_is_honoured(hooks: Hooks) -> None:
    await hooks.subscribe("busy")
    hooks.receiver.plan("busy", (503, {"Retry-After": "2"}, b""), (429, {"Retry-After": "1"}, b""))
    await raise_alert(hooks.sessions)
    await until(lambda: len(hooks.receiver.got("busy")) == 3, 8, "three attempts")
    first, second, third = hooks.receiver.got("busy")
    # without Retry-After the backoff here is at most 0.5 s
    assert second.at - first.at >= 1.95
    assert third.at - second.at >= 0.95
    assert third.status == 200


async def test_410_gone_disables_the_subscription_and_nothing_is_lost(hooks: Hooks) -> None:
    subscription = await hooks.subscribe("gone")
    hooks.receiver.plan("gone", 410)
    first = await raise_alert(hooks.sessions)
    await until(lambda: len(hooks.receiver.got("gone")) == 1, 3, "the first attempt")

    state = await hooks.disabled(subscription["id"])
    assert "410" in state["disabled_reason"]
    [failed] = await hooks.deliveries_when(subscription["id"], settled)
    assert failed["status"] == "failed" and failed["attempts"] == 1 and failed["alert_id"] == first

    # raised while disabled: held back, not sent, not lost
    second = await raise_alert(hooks.sessions, case_id="C2")
    started = time.monotonic()
    while time.monotonic() - started < 0.8:
        assert len(hooks.receiver.got("gone")) == 1
        await asyncio.sleep(0.05)

    response = await hooks.client.patch(
        f"/v1/subscriptions/{subscription['id']}", json={"enabled": True}
    )
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is True and response.json()["disabled_reason"] is None
    await until(lambda: len(hooks.receiver.got("gone")) == 2, 3, "the held-back alert")
    assert hooks.receiver.got("gone")[1].payload["data"]["alert_id"] == second

    # the failed one can be sent again by hand: same id, same bytes
    response = await hooks.client.post(
        f"/v1/subscriptions/{subscription['id']}/deliveries/{failed['id']}/retry"
    )
    assert response.status_code == 202, response.text
    await until(lambda: len(hooks.receiver.got("gone")) == 3, 3, "the manual retry")
    again = hooks.receiver.got("gone")[2]
    assert again.webhook_id == failed["id"]
    assert again.body == hooks.receiver.got("gone")[0].body


async def test_persistent_failure_disables_the_subscription(hooks: Hooks) -> None:
    # FAST: 4 attempts a delivery, disabled after 2 failed deliveries in a row
    subscription = await hooks.subscribe("down")
    hooks.receiver.plan("down", *[500] * 8)
    await raise_alert(hooks.sessions)
    await raise_alert(hooks.sessions, case_id="C2")
    await until(lambda: len(hooks.receiver.got("down")) == 8, 10, "eight attempts")

    state = await hooks.disabled(subscription["id"])
    assert "2 deliveries in a row failed" in state["disabled_reason"]
    items = await hooks.deliveries_when(subscription["id"], settled)
    assert [(i["status"], i["attempts"]) for i in items] == [("failed", 4), ("failed", 4)]
    assert all(len(i["attempt_log"]) == 4 for i in items)


async def test_a_delivery_survives_a_restart(
    postgres_url: str, pg_engine: AsyncEngine, receiver: Receiver
) -> None:
    settings = settings_for(postgres_url, webhook_backoff_base_seconds=1.0)
    receiver.plan("restart", *[500] * 3)
    async with running_app(settings, receiver) as first_app:
        subscription = await first_app.subscribe("restart")
        alert_id = await raise_alert(first_app.sessions)
        await until(lambda: len(receiver.got("restart")) >= 1, 3, "a first, failing attempt")
    # the app is down: an alert raised now is picked up by the next one from the cursor
    attempts_while_up = len(receiver.got("restart"))
    receiver.plans["restart"] = []  # the endpoint recovers
    later_id = await raise_alert(session_factory(pg_engine), case_id="C2")
    async with running_app(settings, receiver) as second_app:
        await until(
            lambda: (
                {r.payload["data"]["alert_id"] for r in receiver.got("restart") if r.status == 200}
                == {alert_id, later_id}
            ),
            5,
            "both alerts delivered",
        )
        items = await second_app.deliveries_when(subscription["id"], settled)
    assert receiver.unverified == []
    ok = [r for r in receiver.got("restart") if r.status == 200]
    assert len(ok) == 2  # each exactly once
    first_ids = {r.webhook_id for r in receiver.got("restart")[:attempts_while_up]}
    assert len(first_ids) == 1 and first_ids <= {r.webhook_id for r in ok}  # the same id
    assert sorted(i["status"] for i in items) == ["delivered", "delivered"]
