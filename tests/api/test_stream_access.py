"""A live stream answers to its caller's current standing, and one identity holds a
bounded number of them (real uvicorn: ASGITransport buffers a stream whole)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from services.access import service as access_service
from tests.api.conftest import Api
from tests.api.live import serving
from tests.api.webhooks import new_identity, raise_alert
from tests.faults.report import report

# a revoked key stops working elsewhere within 10 s (the caller cache); so must a stream
REVOCATION_BOUND_SECONDS = 10.0


async def _identity(api: Api, role: str, hospitals: list[str], departments: list[str]) -> str:
    return await new_identity(api.sessions, role, hospitals, departments)


class Reader:
    """Reads one stream in the background: its alerts, and when it ended."""

    def __init__(self, base: str, key: str, params: dict[str, str] | None = None) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.ended_at: float | None = None
        self.status: int | None = None
        self._task = asyncio.create_task(self._read(base, key, params or {}))

    async def _read(self, base: str, key: str, params: dict[str, str]) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5, read=30)) as client,
            client.stream("GET", "/v1/alerts/stream", headers=headers, params=params) as response,
        ):
            self.status = response.status_code
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    self.alerts.append(orjson.loads(line[6:]))
        self.ended_at = time.monotonic()

    async def until(self, count: int, timeout: float = 10.0) -> None:
        started = time.monotonic()
        while len(self.alerts) < count:
            assert time.monotonic() - started < timeout, f"only {len(self.alerts)} alerts came"
            await asyncio.sleep(0.05)

    async def ended(self, timeout: float) -> float:
        await asyncio.wait_for(asyncio.shield(self._task), timeout)
        assert self.ended_at is not None
        return self.ended_at

    def cancel(self) -> None:
        self._task.cancel()


async def test_a_stream_ends_when_its_identity_is_disabled(api: Api) -> None:
    key = await _identity(api, "insurance_office", ["H001"], [])
    async with serving(api.app) as base:
        reader = Reader(base, key)
        await asyncio.sleep(0.5)
        first = await raise_alert(api.sessions, case_id="C1")
        await reader.until(1)
        assert reader.alerts[0]["alert_id"] == first
        async with api.sessions() as db_session:
            await access_service.disable(
                db_session=db_session, name_or_id=await _identity_id(api, key)
            )
            await db_session.commit()
        disabled_at = time.monotonic()
        # alerts keep coming; none may reach the disabled identity once its stream ends
        raising = asyncio.create_task(_keep_raising(api, "H001"))
        try:
            ended_at = await reader.ended(REVOCATION_BOUND_SECONDS + 5)
        finally:
            raising.cancel()
        assert ended_at - disabled_at <= REVOCATION_BOUND_SECONDS, ended_at - disabled_at
        report(
            "live stream of an identity disabled while it is open",
            {
                "stream ended after the identity was disabled": f"{ended_at - disabled_at:.1f} s",
                "alerts it got, the first before the disabling": len(reader.alerts),
            },
        )
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            again = await client.get(
                "/v1/alerts/stream", headers={"Authorization": f"Bearer {key}"}
            )
        assert again.status_code == 401


async def _keep_raising(api: Api, hospital_id: str) -> None:
    for number in range(1000):
        await raise_alert(api.sessions, hospital_id=hospital_id, case_id=f"K{number}")
        await asyncio.sleep(0.3)


async def test_a_stream_ends_when_its_scope_is_narrowed(api: Api) -> None:
    key = await _identity(api, "department_head", ["H001"], ["CARD", "SURG"])
    async with serving(api.app) as base:
        reader = Reader(base, key)
        await asyncio.sleep(0.5)
        await raise_alert(api.sessions, case_id="C1", department="SURG")
        await reader.until(1)
        async with api.engine.begin() as connection:
            await connection.execute(
                text("UPDATE identities SET departments = :d WHERE role = 'department_head'"),
                {"d": '["CARD"]'},
            )
        narrowed_at = time.monotonic()
        raising = asyncio.create_task(_keep_raising_surgery(api))
        try:
            ended_at = await reader.ended(REVOCATION_BOUND_SECONDS + 5)
        finally:
            raising.cancel()
        assert ended_at - narrowed_at <= REVOCATION_BOUND_SECONDS
        # the client comes back where it left off, and hears its narrower scope only
        again = Reader(base, key)
        await asyncio.sleep(0.5)
        await raise_alert(api.sessions, case_id="S-after", department="SURG")
        card = await raise_alert(api.sessions, case_id="C-after", department="CARD")
        await again.until(1)
        await asyncio.sleep(0.5)
        again.cancel()
    assert [alert["alert_id"] for alert in again.alerts] == [card]


async def _keep_raising_surgery(api: Api) -> None:
    for number in range(1000):
        await raise_alert(api.sessions, case_id=f"S{number}", department="SURG")
        await asyncio.sleep(0.3)


async def test_one_identity_holds_a_bounded_number_of_streams(api: Api) -> None:
    limit = api.app.state.stream_slots.limit
    greedy = await _identity(api, "insurance_office", ["H001"], [])
    other = await _identity(api, "insurance_office", ["H001"], [])
    async with serving(api.app) as base:
        readers = [Reader(base, greedy) for _ in range(limit)]
        for reader in readers:
            started = time.monotonic()
            while reader.status is None:
                assert time.monotonic() - started < 10, "a stream did not open"
                await asyncio.sleep(0.02)
            assert reader.status == 200
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            refused = await client.get(
                "/v1/alerts/stream", headers={"Authorization": f"Bearer {greedy}"}
            )
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) > 0
            # another identity is not held back by the greedy one
            async with client.stream(
                "GET", "/v1/alerts/stream", headers={"Authorization": f"Bearer {other}"}
            ) as response:
                assert response.status_code == 200
            # a closed stream gives its slot back
            readers[0].cancel()
            started = time.monotonic()
            greedy_id = await _identity_id(api, greedy)
            while api.app.state.stream_slots.held(greedy_id) >= limit:
                assert time.monotonic() - started < 5, "the slot never came back"
                await asyncio.sleep(0.05)
            async with client.stream(
                "GET", "/v1/alerts/stream", headers={"Authorization": f"Bearer {greedy}"}
            ) as response:
                assert response.status_code == 200
        for reader in readers:
            reader.cancel()


async def _identity_id(api: Api, key: str) -> str:
    return str(
        await api.scalar(
            "SELECT identity_id FROM api_keys WHERE key_digest = :d",
            d=access_service.key_digest(key),
        )
    )


async def test_the_stream_carries_the_kind_and_filters_by_it(api: Api) -> None:
    key = await _identity(api, "insurance_office", ["H001"], [])
    async with serving(api.app) as base:
        everything = Reader(base, key)
        forecasts = Reader(base, key, {"kind": "forecast"})
        await asyncio.sleep(0.5)
        level = await raise_alert(api.sessions, case_id="C1")
        forecast = await raise_alert(
            api.sessions,
            case_id="C2",
            level="red",
            previous_level="none",
            transition="projected",
            kind="forecast",
        )
        await everything.until(2)
        await forecasts.until(1)
        await asyncio.sleep(0.3)
        assert [(a["alert_id"], a["kind"]) for a in everything.alerts] == [
            (level, "level"),
            (forecast, "forecast"),
        ]
        assert [a["alert_id"] for a in forecasts.alerts] == [forecast]
        assert forecasts.alerts[0]["projected_total"] == "45000.00"
        everything.cancel()
        forecasts.cancel()
