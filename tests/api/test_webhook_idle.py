"""An API process with nothing to send asks the database nothing but, now and then,
whether there is something; a subscription made wakes its sender at once, one made
through another process is found within the idle interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.settings import ApiSettings
from tests.api.conftest import running_api
from tests.api.webhooks import (
    Hooks,
    Receiver,
    raise_alert,
    running_app,
    running_receiver,
    settings_for,
    until,
)

TICK = 0.05


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(" ".join(str(args[2]).split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def outbox(sent: list[str]) -> list[str]:
    """The statements about alerts, subscriptions and deliveries."""
    return [s for s in sent if "webhook_" in s or "alerts" in s]


async def test_an_idle_sender_asks_nothing_and_wakes_when_a_subscription_is_made(
    postgres_url: str, pg_engine: AsyncEngine, receiver: Receiver
) -> None:
    settings = settings_for(
        postgres_url, webhook_poll_seconds=TICK, webhook_idle_check_seconds=60.0
    )
    async with running_app(settings, receiver) as hooks:
        await asyncio.sleep(5 * TICK)  # the first tick has looked: nothing to send
        with statements(hooks.engine) as sent:
            await asyncio.sleep(20 * TICK)
        assert outbox(sent) == []

        # this process's route wakes the sender: the alert goes out in well under the
        # idle interval
        await hooks.subscribe("ward")
        alert_id = await raise_alert(hooks.sessions)
        waited = await until(lambda: bool(receiver.got("ward")), 15, "the alert")
        assert waited < 10  # the idle check alone would have taken 60 s
        assert receiver.got("ward")[0].payload["data"]["alert_id"] == alert_id


async def test_a_subscription_made_elsewhere_is_found_within_the_idle_interval(
    postgres_url: str, pg_engine: AsyncEngine, receiver: Receiver, tmp_path: Any
) -> None:
    idle_check = 0.5
    sender_settings = settings_for(
        postgres_url, webhook_poll_seconds=TICK, webhook_idle_check_seconds=idle_check
    )
    # another API process, one that sends no webhooks, takes the subscription
    other_settings = ApiSettings(
        database_url=postgres_url, topic_prefix="drgwatch-test", data_dir=tmp_path, webhooks=False
    )
    async with (
        running_app(sender_settings, receiver) as sender,
        running_api(other_settings) as other,
    ):
        elsewhere = Hooks(other.app, other.client, other.engine, other.sessions, receiver)
        dispatcher = sender.app.state.dispatcher
        subscription = await elsewhere.subscribe("ward")
        alert_id = await raise_alert(sender.sessions)
        # the sender finds the subscription at its next check, and sends the alert
        found = await until(lambda: dispatcher.active, 5, "the sender to find it")
        assert found < idle_check + 1
        # (a first attempt that times out is retried: delivery has tests of its own)
        await until(lambda: bool(receiver.got("ward")), 10, "the alert")
        assert receiver.got("ward")[0].payload["data"]["alert_id"] == alert_id

        # with the last subscription gone the sender goes quiet again, but for its check
        response = await elsewhere.client.delete(f"/v1/subscriptions/{subscription['id']}")
        assert response.status_code == 204
        # its next check finds nothing enabled (a tick that is sending may delay it)
        await until(lambda: not dispatcher.active, 10, "the sender to go idle")
        with statements(sender.engine) as sent:
            await asyncio.sleep(4 * idle_check)
        checks = outbox(sent)
        assert 2 <= len(checks) <= 5, checks
        assert all(s.startswith("SELECT (EXISTS (SELECT") for s in checks), checks
