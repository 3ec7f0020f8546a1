"""Implausible times at ingest: an event from the future is refused naming the field; one
from long ago is accepted and counted, with a warning and a metric. The worker checks
neither (an event ingest accepted is applied whenever it is replayed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.api.settings import ApiSettings
from services.casecost.events import parse_event
from services.ingest.plausibility import TimeBounds, check_times
from tests.api.conftest import Api
from tests.api.helpers import admitted, charge


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def now() -> datetime:
    return datetime.now(UTC)


def backdated_total() -> float:
    return REGISTRY.get_sample_value("drgwatch_events_backdated_total") or 0.0


async def post(api: Api, body: Any) -> Any:
    return await api.client.post("/v1/events", json=body)


async def test_a_charge_dated_years_ahead_is_refused_naming_occurred_at(api: Api) -> None:
    response = await post(api, charge("FUT-1", occurred_at="2031-01-01T00:00:00+08:00"))

    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "occurred_at"
    assert "future" in error["reason"] and "2031-01-01" in error["reason"]
    assert await api.scalar("SELECT count(*) FROM ingest_ledger") == 0
    letters = await api.rows("SELECT reason FROM dead_letters")
    assert len(letters) == 1 and "occurred_at" in letters[0].reason


@pytest.mark.parametrize("field", ["occurred_at", "admitted_at"])
async def test_every_time_of_an_event_is_checked(api: Api, field: str) -> None:
    ahead = stamp(now() + timedelta(hours=1))
    response = await post(
        api,
        {"events": [admitted("FUT-A", **{field: ahead}), charge("OK-1", occurred_at=stamp(now()))]},
    )

    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    assert [e["field"] for e in results[0]["errors"]] == [field]


async def test_a_clock_a_little_ahead_is_tolerated(api: Api) -> None:
    response = await post(api, charge("SKEW-1", occurred_at=stamp(now() + timedelta(minutes=4))))
    assert response.status_code == 202, response.text
    assert response.json()["results"][0]["warnings"] == []


def test_the_bounds_are_settings() -> None:
    settings = ApiSettings(event_future_skew_seconds=30, event_backdated_warning_days=7)
    assert settings.time_bounds == TimeBounds(
        future_skew=timedelta(seconds=30), backdated_after=timedelta(days=7)
    )
    assert ApiSettings().time_bounds == TimeBounds()


async def test_an_event_from_long_ago_is_kept_and_counted_with_a_warning(api: Api) -> None:
    before = backdated_total()
    old = stamp(now() - timedelta(days=400))
    response = await post(
        api,
        {"events": [charge("OLD-1", occurred_at=old), charge("NEW-1", occurred_at=stamp(now()))]},
    )

    assert response.status_code == 202, response.text
    old_result, new_result = response.json()["results"]
    assert old_result["status"] == "accepted" and old_result["errors"] == []
    (warning,) = old_result["warnings"]
    assert warning["field"] == "occurred_at" and "days" in warning["reason"]
    assert new_result["warnings"] == []
    assert await api.scalar("SELECT count(*) FROM ingest_ledger") == 2
    assert backdated_total() == before + 1
    # sent again: a duplicate, still with its warning, not counted again
    again = await post(api, charge("OLD-1", occurred_at=old))
    assert again.json()["results"][0]["status"] == "duplicate"
    assert again.json()["results"][0]["warnings"] == old_result["warnings"]
    assert backdated_total() == before + 1


def test_the_check_is_pure_with_now_passed_in() -> None:
    event = parse_event(charge("P-1", occurred_at="2026-06-01T00:00:00+08:00"))
    bounds = TimeBounds(future_skew=timedelta(minutes=5), backdated_after=timedelta(days=90))
    june = datetime(2026, 6, 1, tzinfo=UTC)

    assert check_times(event, now=june, bounds=bounds) == ([], [])
    refused, _ = check_times(event, now=june - timedelta(hours=9), bounds=bounds)
    assert [e.field for e in refused] == ["occurred_at"]
    _, warned = check_times(event, now=june + timedelta(days=91), bounds=bounds)
    assert [e.field for e in warned] == ["occurred_at"]


def test_the_worker_applies_what_ingest_accepted_whenever_it_is_replayed() -> None:
    """The worker's decoding has no clock: an event far older than any bound still folds."""
    from services.alerting.batch import decode

    raw = b'{"event_id":"R1","type":"drg_assigned","hospital_id":"H1","case_id":"C1",'
    raw += b'"occurred_at":"2000-01-01T00:00:00+08:00","drg_code":"FM15"}'
    event, _ = decode(raw)
    assert event.event_id == "R1"
