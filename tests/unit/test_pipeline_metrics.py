"""The pipeline's metrics keep their labels to small fixed sets and count what they say."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from services.metrics import count_alert, count_ingested, show_consumer_lag, show_readiness

RAISED = datetime(2026, 11, 30, 12, tzinfo=UTC)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_alert_is_counted_with_its_delay() -> None:
    before = value(
        "drgwatch_alerts_raised_total", kind="level", level="red", transition="escalated"
    )
    delays = value("drgwatch_event_to_alert_seconds_sum", kind="level")
    count_alert(
        {
            "kind": "level",
            "level": "red",
            "transition": "escalated",
            "occurred_at": "2026-11-20T08:00:00+08:00",  # days before: not what counts
        },
        received_at=RAISED.timestamp() - 0.25,
        raised_at=RAISED.timestamp(),
    )
    after = value("drgwatch_alerts_raised_total", kind="level", level="red", transition="escalated")
    assert after - before == 1
    assert value("drgwatch_event_to_alert_seconds_sum", kind="level") - delays == 0.25


def test_unknown_label_values_are_other() -> None:
    before = value("drgwatch_alerts_raised_total", kind="other", level="other", transition="other")
    count_alert(
        {"kind": "case-C1", "level": "purple", "transition": None},
        received_at=None,
        raised_at=RAISED.timestamp(),
    )
    after = value("drgwatch_alerts_raised_total", kind="other", level="other", transition="other")
    assert after - before == 1


def test_events_refused_one_by_one_count_as_invalid() -> None:
    before = value("drgwatch_events_rejected_total", source="intake", reason="invalid")
    rejected = value("drgwatch_events_ingested_total", source="intake", status="rejected")
    count_ingested("intake", "rejected", 2)
    assert value("drgwatch_events_rejected_total", source="intake", reason="invalid") - before == 2
    assert (
        value("drgwatch_events_ingested_total", source="intake", status="rejected") - rejected == 2
    )


def test_lag_shows_only_the_partitions_held_now() -> None:
    show_consumer_lag({0: 5, 3: 7})
    show_consumer_lag({3: 2})
    assert REGISTRY.get_sample_value("drgwatch_worker_consumer_lag", {"partition": "0"}) is None
    assert value("drgwatch_worker_consumer_lag", partition="3") == 2


def test_readiness_changes_are_counted_not_answers() -> None:
    show_readiness(True)
    before = value("drgwatch_readiness_changes_total")
    show_readiness(True)
    show_readiness(False)
    show_readiness(False)
    show_readiness(True)
    assert value("drgwatch_readiness_changes_total") - before == 2
    assert value("drgwatch_ready") == 1
