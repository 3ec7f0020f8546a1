"""The pure part of webhooks: severity, routing, ids, backoff and Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.access.principal import Principal
from services.alerting.webhooks.routing import (
    AlertFacts,
    Route,
    backoff_seconds,
    delivery_id,
    goes_to_digest,
    is_deliverable,
    retry_after_seconds,
    severity,
)

HEAD = Principal("idn_1", "head", "department_head", frozenset({"H001"}), frozenset({"CARD"}))
OFFICE = Principal("idn_2", "office", "insurance_office", frozenset({"H001"}))
EVERYTHING = Route(frozenset(), frozenset(), "blue", blue_digest=False)


def alert(
    level: str, previous: str, department: str = "CARD", hospital: str = "H001"
) -> AlertFacts:
    return AlertFacts("a1", hospital, department, level, previous)


def test_severity_is_the_higher_of_level_and_previous_level() -> None:
    assert severity(alert("red", "yellow")) == "red"
    assert severity(alert("none", "yellow")) == "yellow"
    assert severity(alert("blue", "none")) == "blue"


def test_deliverable_needs_scope_filters_and_level() -> None:
    assert is_deliverable(alert("blue", "none"), EVERYTHING, HEAD)
    assert not is_deliverable(alert("red", "none", department="SURG"), EVERYTHING, HEAD)
    assert not is_deliverable(alert("red", "none", hospital="H002"), EVERYTHING, OFFICE)
    yellow_up = Route(frozenset(), frozenset(), "yellow", blue_digest=False)
    assert not is_deliverable(alert("blue", "none"), yellow_up, OFFICE)
    assert is_deliverable(alert("none", "red"), yellow_up, OFFICE)
    surgery = Route(frozenset(), frozenset({"SURG"}), "blue", blue_digest=False)
    assert not is_deliverable(alert("red", "none"), surgery, OFFICE)


def test_only_blue_severity_goes_to_the_digest() -> None:
    digest = Route(frozenset(), frozenset(), "blue", blue_digest=True)
    assert goes_to_digest(alert("blue", "none"), digest)
    assert goes_to_digest(alert("none", "blue"), digest)
    assert not goes_to_digest(alert("blue", "yellow"), digest)
    assert not goes_to_digest(alert("blue", "none"), EVERYTHING)


def test_delivery_ids_are_deterministic_per_subscription_and_alert() -> None:
    assert delivery_id("sub_1", "a1") == delivery_id("sub_1", "a1")
    assert delivery_id("sub_1", "a1") != delivery_id("sub_2", "a1")
    assert delivery_id("sub_1", "a1").startswith("msg_")


@pytest.mark.parametrize("attempts", [1, 2, 5, 20])
def test_backoff_is_jittered_in_the_upper_half_of_the_capped_exponential(attempts: int) -> None:
    rng = random.Random(attempts)
    ceiling = min(3600.0, 30.0 * 2 ** (attempts - 1))
    delays = [backoff_seconds(attempts, base=30, cap=3600, rng=rng) for _ in range(200)]
    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert max(delays) - min(delays) > ceiling / 4  # spread over the range, not pinned


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(later, now) == 90
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(earlier, now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def forecast_alert(acknowledged: str | None = None) -> AlertFacts:
    return AlertFacts(
        "f1",
        "H001",
        "CARD",
        "red",
        "none",
        "projected",
        "forecast",
        acknowledged_level=acknowledged,
    )


def test_a_forecast_alert_goes_where_red_alerts_go() -> None:
    yellow_up = Route(frozenset(), frozenset(), "yellow", blue_digest=True)
    red_only = Route(frozenset(), frozenset(), "red", blue_digest=True)
    for route in (EVERYTHING, yellow_up, red_only):
        assert is_deliverable(forecast_alert(), route, OFFICE)
        assert not goes_to_digest(forecast_alert(), route)
    assert is_deliverable(forecast_alert(), EVERYTHING, HEAD)
    assert not is_deliverable(
        AlertFacts("f1", "H001", "SURG", "red", "none", "projected", "forecast"), EVERYTHING, HEAD
    )
    # a red level acknowledged earlier does not silence the forecast of a new episode
    assert is_deliverable(forecast_alert(acknowledged="red"), EVERYTHING, OFFICE)


def test_a_subscription_may_name_the_kinds_it_wants() -> None:
    levels_only = Route(frozenset(), frozenset(), "blue", False, frozenset({"level"}))
    forecasts_only = Route(frozenset(), frozenset(), "blue", False, frozenset({"forecast"}))
    assert not is_deliverable(forecast_alert(), levels_only, OFFICE)
    assert is_deliverable(alert("red", "none"), levels_only, OFFICE)
    assert is_deliverable(forecast_alert(), forecasts_only, OFFICE)
    assert not is_deliverable(alert("red", "none"), forecasts_only, OFFICE)


def rule_alert(level: str, case_level: str, department: str = "CARD") -> AlertFacts:
    """A rule's finding of severity `level` on a case standing at `case_level`."""
    return AlertFacts("r1", "H001", department, level, case_level, "raised", "rule")


def test_a_rule_alert_is_as_severe_as_its_rule_whatever_level_the_case_stands_at() -> None:
    assert severity(rule_alert("blue", "red")) == "blue"
    assert severity(rule_alert("red", "none")) == "red"
    yellow_up = Route(frozenset(), frozenset(), "yellow", blue_digest=True)
    assert not is_deliverable(rule_alert("blue", "red"), yellow_up, OFFICE)
    assert is_deliverable(rule_alert("yellow", "none"), yellow_up, OFFICE)
    digest = Route(frozenset(), frozenset(), "blue", blue_digest=True)
    assert goes_to_digest(rule_alert("blue", "red"), digest)
    assert not goes_to_digest(rule_alert("red", "blue"), digest)
    # a finding is raised once: an acknowledged case level does not hold it back
    acknowledged = AlertFacts("r1", "H001", "CARD", "yellow", "red", "raised", "rule", "red")
    assert is_deliverable(acknowledged, EVERYTHING, HEAD)


def test_a_subscription_may_ask_for_rule_alerts_alone() -> None:
    rules_only = Route(frozenset(), frozenset(), "blue", False, frozenset({"rule"}))
    assert is_deliverable(rule_alert("yellow", "none"), rules_only, HEAD)
    assert not is_deliverable(alert("red", "none"), rules_only, HEAD)
    levels_only = Route(frozenset(), frozenset(), "blue", False, frozenset({"level"}))
    assert not is_deliverable(rule_alert("red", "none"), levels_only, HEAD)
    # a department rule's finding (no case) reaches that department's head only
    assert is_deliverable(rule_alert("yellow", "none"), EVERYTHING, HEAD)
    assert not is_deliverable(rule_alert("yellow", "none", department="SURG"), EVERYTHING, HEAD)
