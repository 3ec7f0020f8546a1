"""The demo against the real app: every event accepted, none dated ahead of the clock it
is posted by, a resumption that continues the same stays, and a second run beside the
first with ids of its own that discharges the stays the first left in hospital.

One department (oncology) keeps the run small; the clock is the real one at the start
and moves on only when the demo sleeps, so the live phase takes no real time (and stays
within the minutes ahead of the real clock that ingest tolerates).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from services.casecost.events import TIMESTAMP_FIELDS
from services.demo.run import STATE_FILE, RunState, run_demo
from tests.api.conftest import Api


def in_hospital(events: list[dict[str, str]]) -> set[str]:
    """The cases these events leave in hospital: some event, and no discharge."""
    discharged = {event["case_id"] for event in events if event["type"] == "discharged"}
    return {event["case_id"] for event in events} - discharged


class SteppedClock:
    """The real clock at the start; afterwards it moves only when the demo sleeps."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.moment

    async def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


async def _run(
    api: Api, clock: SteppedClock, state_dir: Path, lines: list[str], *, resume: bool = False
) -> tuple[RunState, list[dict[str, str]]]:
    posted: list[dict[str, str]] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path == "/v1/events":
            for event in json.loads(request.content)["events"]:
                times = [
                    datetime.fromisoformat(event[name])
                    for name in TIMESTAMP_FIELDS
                    if name in event
                ]
                assert max(times) <= clock(), f"{event['event_id']} is dated after its posting"
                posted.append(event)

    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", event_hooks={"request": [record]}
    ) as client:
        state = await run_demo(
            client,
            state_dir=state_dir,
            resume=resume,
            seed=5,
            history_days=3,
            live_minutes=1.0,
            live_hours=6.0,
            zone=ZoneInfo("Asia/Shanghai"),
            departments=["ZLK"],
            clock=clock,
            sleep=clock.sleep,
            echo=lines.append,
        )
    return state, posted


async def test_the_demo_runs_resumes_and_runs_again_without_a_rejection(
    api: Api, tmp_path: Path
) -> None:
    clock = SteppedClock()
    lines: list[str] = []
    first, history_and_live = await _run(api, clock, tmp_path, lines)
    assert len(history_and_live) > 500
    assert await api.scalar("select count(*) from ingest_ledger") == len(history_and_live)
    assert not any("rejected" in line or "not set" in line for line in lines), lines
    assert (tmp_path / STATE_FILE).exists()
    departments = (await api.client.get("/v1/hospitals/H001/departments")).json()["items"]
    names = {department["code"]: department for department in departments}
    assert names["ZLK"]["name_zh"] == "肿瘤科" and names["XNK"]["name_en"] == "Cardiology"
    # the simulated department's targets for this month and this year, set through the API
    today = first.anchor.astimezone(ZoneInfo("Asia/Shanghai")).date()
    targets = (await api.client.get("/v1/hospitals/H001/targets")).json()["items"]
    assert {(item["department"], item["period"]) for item in targets} == {
        ("ZLK", f"{today:%Y-%m}"),
        ("ZLK", f"{today:%Y}"),
    }
    for item in targets:
        assert item["cases"] > 0
        assert Decimal(item["total_cost"]) > Decimal(item["cost_per_case"]) > 0
    assert any("targets set for 1 departments" in line for line in lines), lines
    assert first.simulated_until == first.anchor + timedelta(hours=6)
    # the live part is dated by the clock it was posted by, after the history
    live = [event for event in history_and_live if event["occurred_at"] > first.anchor.isoformat()]
    assert live and all(event["case_id"].startswith(f"ZY{first.run_id}-") for event in live)

    clock.moment = max(clock.moment, datetime.now(UTC)) + timedelta(seconds=5)
    resumed, continued = await _run(api, clock, tmp_path, lines, resume=True)
    assert resumed.run_id == first.run_id and len(resumed.segments) == 2
    assert resumed.simulated_until == first.simulated_until + timedelta(hours=6)
    assert continued, "the resumption posts the stays' next hours"
    earlier_cases = {event["case_id"] for event in history_and_live}
    assert {event["case_id"] for event in continued} & earlier_cases  # the same stays go on
    assert not {event["event_id"] for event in continued} & {
        event["event_id"] for event in history_and_live
    }

    census = in_hospital(history_and_live + continued)
    assert len(census) > 10  # of oncology's 32 beds

    clock.moment = max(clock.moment, datetime.now(UTC)) + timedelta(seconds=5)
    second, again = await _run(api, clock, tmp_path, lines)
    assert second.run_id != first.run_id
    # the first run's stays still in hospital are discharged when it stopped, once each
    first_run = {event["case_id"] for event in history_and_live + continued}
    closing = [event for event in again if event["case_id"] in first_run]
    assert {event["case_id"] for event in closing} == census
    assert all(event["type"] == "discharged" for event in closing)
    assert len(closing) == len(census)
    stopped = resumed.segments[-1].to_real(resumed.simulated_until)
    assert {event["discharged_at"] for event in closing} == {stopped.isoformat()}
    # one hospital's census afterwards: the second run's stays only, about as many
    after = in_hospital(history_and_live + continued + again)
    assert after and all(case_id.startswith(f"ZY{second.run_id}-") for case_id in after)
    assert 0.6 * len(census) <= len(after) <= 1.6 * len(census)
    assert any("left" in line and "stays in hospital" in line for line in lines)
    total = len(history_and_live) + len(continued) + len(again)
    assert await api.scalar("select count(*) from ingest_ledger") == total
    assert await api.scalar("select count(*) from dead_letters") == 0
    assert not any("rejected" in line for line in lines), lines
