"""The demo's simulated day is a day that has happened: ingest refuses events dated after
they are posted."""

from __future__ import annotations

from datetime import UTC, datetime

from services.casecost.events import TIMESTAMP_FIELDS, parse_event
from services.demo import simulated_day


def test_every_time_of_the_demo_day_is_in_the_past() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    events = simulated_day()
    latest = max(
        datetime.fromisoformat(event[field])
        for event in events
        for field in TIMESTAMP_FIELDS
        if field in event
    )
    assert latest <= datetime.now(UTC)
    assert (before - latest).total_seconds() < 60  # and it ends about now
    for event in events:
        parse_event(event)
