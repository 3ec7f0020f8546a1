"""Issue 5 on the whole stack: a department head's webhook endpoint and SSE client hear of
a case crossing its DRG standard within a second, only of their department, and a
restart of the API (SIGKILL) loses no alert and sends none twice.

The department head is created with `drgwatch users`, subscribes through the API, and
reads the stream with their own key; events go through ingest, Kafka and the worker.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.webhooks import Receiver, running_receiver
from tests.faults.report import report
from tests.integration.harness import Stack
from tests.integration.test_pipeline import admitted, line, of_standard

pytestmark = pytest.mark.integration
FAST_WEBHOOKS = {
    "DRGWATCH_WEBHOOK_BACKOFF_BASE_SECONDS": "0.3",
    "DRGWATCH_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
    "DRGWATCH_WEBHOOK_TIMEOUT_SECONDS": "2",
    "DRGWATCH_WEBHOOK_LEASE_SECONDS": "7",
    "DRGWATCH_WEBHOOK_MAX_ATTEMPTS": "20",
}


def create_department_head(database_url: str, hospital: str) -> str:
    """`drgwatch users create`, as an administrator would run it; the printed key."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "users", "create", f"Dr Li {uuid.uuid4().hex[:6]}"]
        + ["--role", "department_head", "--hospital", hospital, "--department", "CARDIO"]
        + ["--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = re.search(r"(dwk_\S+)", done.stdout)
    assert found, done.stdout
    return found.group(1)


@dataclass
class StreamReader:
    """An SSE client that reconnects with Last-Event-ID, as a browser's EventSource does."""

    url: str
    key: str
    received: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    reconnects: int = 0

    async def run(self) -> None:
        last_id: int | None = None
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=30)) as client:
            while True:
                headers = {"Authorization": f"Bearer {self.key}"}
                if last_id is not None:
                    headers["Last-Event-ID"] = str(last_id)
                try:
                    async with client.stream(
                        "GET", f"{self.url}/v1/alerts/stream", headers=headers
                    ) as response:
                        assert response.status_code == 200
                        event_id = None
                        async for text in response.aiter_lines():
                            if text.startswith("id: "):
                                event_id = int(text[4:])
                            elif text.startswith("data: ") and event_id is not None:
                                alert = orjson.loads(text[6:])
                                self.received.append((time.monotonic(), event_id, alert))
                                last_id = event_id
                except (httpx.HTTPError, OSError):
                    pass
                self.reconnects += 1
                await asyncio.sleep(0.2)

    def times_of(self, event_id: str) -> list[float]:
        return [at for at, _, alert in self.received if alert["event_id"] == event_id]


def hook_times(receiver: Receiver, event_id: str, status: int = 200) -> list[float]:
    return [
        r.at
        for r in receiver.got("head")
        if r.payload and r.payload["data"]["event_id"] == event_id and r.status == status
    ]


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_department_head_hears_of_each_crossing_within_a_second_and_a_restart_loses_none(
    postgres_url: str, tmp_path: Path
) -> None:
    stack = Stack(workdir=tmp_path, database_url=postgres_url, extra_env=FAST_WEBHOOKS)
    hospital = f"H{uuid.uuid4().hex[:6]}"
    try:
        await asyncio.to_thread(stack.start)
        key = await asyncio.to_thread(create_department_head, postgres_url, hospital)
        async with (
            running_receiver() as receiver,
            httpx.AsyncClient(base_url=stack.url, timeout=30) as client,
        ):
            created = await client.post(
                "/v1/subscriptions",
                json={"url": receiver.url("head")},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert created.status_code == 201, created.text
            receiver.secrets["head"] = created.json()["secret"]
            stream = StreamReader(stack.url, key)
            reading = asyncio.create_task(stream.run())

            async def post(events: list[dict[str, Any]]) -> float:
                sent = time.monotonic()
                response = await client.post("/v1/events", json={"events": events})
                assert response.status_code == 202, response.text
                return sent

            # 1. crossings, one at a time: blue, yellow, red of six cardiology cases
            sse_delays, hook_delays, crossings = [], [], []
            for number in range(6):
                case = f"C{number}"
                await post([admitted(hospital, case, f"{case}-a")])
                spent = "0"
                for level, fraction in (("blue", "0.91"), ("yellow", "0.96"), ("red", "1.01")):
                    amount = of_standard(str(float(fraction) - float(spent)))
                    spent = fraction
                    event_id = f"{case}-{level}"
                    sent = await post([line(hospital, case, event_id, amount)])
                    await wait_until(
                        lambda e=event_id: stream.times_of(e) and hook_times(receiver, e),
                        10,
                        f"{event_id} at the stream and the endpoint",
                    )
                    sse_delays.append(stream.times_of(event_id)[0] - sent)
                    hook_delays.append(hook_times(receiver, event_id)[0] - sent)
                    crossings.append(event_id)
            # another department's case crossing red reaches neither
            other = admitted(hospital, "S1", "S1-a", department="SURG")
            await post([other, line(hospital, "S1", "S1-red", of_standard("1.2"))])

            # 2. the endpoint fails, then the API is SIGKILLed with deliveries pending
            receiver.plan("head", 503, 503, 503)
            await post([admitted(hospital, "K1", "K1-a")])
            await post([line(hospital, "K1", "K1-red", of_standard("1.05"))])
            await wait_until(lambda: receiver.got("head")[-1].status == 503, 10, "a failure")
            await post([admitted(hospital, "K2", "K2-a")])
            await post([line(hospital, "K2", "K2-red", of_standard("1.05"))])
            killed = time.monotonic()
            await asyncio.to_thread(stack.kill, stack.api)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(stack.start_api)
            await asyncio.to_thread(stack.wait_ready)
            await wait_until(
                lambda: hook_times(receiver, "K1-red") and hook_times(receiver, "K2-red"),
                30,
                "the pending deliveries after the restart",
            )
            await wait_until(
                lambda: stream.times_of("K1-red") and stream.times_of("K2-red"), 30, "the stream"
            )
            recovered = time.monotonic() - killed
            await asyncio.sleep(1.5)  # anything sent twice would have come by now
            reading.cancel()

        delivered = [r for r in receiver.got("head") if r.status == 200]
        by_event = [r.payload["data"]["event_id"] for r in delivered]
        expected = [*crossings, "K1-red", "K2-red"]
        assert receiver.unverified == []
        assert sorted(by_event) == sorted(expected), "each alert exactly once, none other"
        k1_ids = {
            r.webhook_id for r in receiver.got("head") if r.payload["data"]["event_id"] == "K1-red"
        }
        assert len(k1_ids) == 1, "a retried delivery keeps its webhook-id"
        streamed = [alert["event_id"] for _, _, alert in stream.received]
        assert sorted(streamed) == sorted(expected), "the stream: each once, nothing else"
        assert stream.reconnects >= 1
    finally:
        await asyncio.to_thread(stack.stop)

    figures = {
        "crossings (blue, yellow, red of 6 cases)": len(crossings),
        "POST sent -> SSE alert, p50 / max ms": (
            f"{statistics.median(sse_delays) * 1000:.0f} / {max(sse_delays) * 1000:.0f}"
        ),
        "POST sent -> webhook received, p50 / max ms": (
            f"{statistics.median(hook_delays) * 1000:.0f} / {max(hook_delays) * 1000:.0f}"
        ),
        "API SIGKILL -> pending webhooks and stream delivered": f"{recovered:.1f} s",
        "alerts delivered twice / missed / of another department": "0 / 0 / 0",
    }
    report("live push on the whole stack (tests/integration/test_live_push.py)", figures)
    print(figures)
    assert max(sse_delays) < 1.0 and max(hook_delays) < 1.0, figures
