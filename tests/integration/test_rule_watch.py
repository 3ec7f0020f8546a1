"""Department rules on the whole stack: cases discharged through ingest, Kafka and the
worker raise a department rule alert from the worker's rule watch (the shipped rules),
once, readable at GET /v1/alerts?kind=rule.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.reference.rules import DEFAULT_RULES_DIR
from services.settings import CommonSettings
from tests.integration.harness import Stack, running_stack
from tests.integration.test_pipeline import admitted, line

pytestmark = pytest.mark.integration
RULE_WATCH = {"DRGWATCH_RULES_DIR": str(DEFAULT_RULES_DIR), "DRGWATCH_RULE_CHECK_SECONDS": "0.5"}


@pytest.fixture
def stack(own_postgres_url: str, tmp_path: Path) -> Iterator[Stack]:
    """A stack on a database of its own: the shipped sample catalogue prices its cases
    (a database other tests left a catalogue in would not get the sample)."""
    with running_stack(tmp_path, own_postgres_url, RULE_WATCH) as running:
        yield running


def discharged(h: str, c: str, n: str, at: str) -> dict[str, Any]:
    return {
        "event_id": n,
        "type": "discharged",
        "hospital_id": h,
        "case_id": c,
        "occurred_at": at,
        "discharged_at": at,
    }


def streamed_ids(stack: Stack, hospital: str, *, until: str) -> list[str]:
    """The ids of the rule alerts the live stream sends, from its start, up to `until`."""
    seen: list[str] = []
    params = {"hospital_id": hospital, "kind": "rule"}
    timeout = httpx.Timeout(10, read=15)
    with httpx.stream(
        "GET",
        f"{stack.url}/v1/alerts/stream",
        params=params,
        headers={"Last-Event-ID": "0"},
        timeout=timeout,
    ) as response:
        assert response.status_code == 200
        for text in response.iter_lines():
            if text.startswith("data: "):
                seen.append(orjson.loads(text[6:])["alert_id"])
                if seen[-1] == until:
                    return seen
    return seen


def test_discharged_cases_raise_a_department_rule_alert(stack: Stack) -> None:
    hospital = f"H{uuid.uuid4().hex[:6]}"
    # a minute ago, local time: the current month (or, in the first minute of a month,
    # the one that just closed; judged all the same)
    moment = datetime.now(CommonSettings().zone).replace(microsecond=0) - timedelta(minutes=1)
    at, admitted_at = moment.isoformat(), (moment - timedelta(days=2)).isoformat()
    events: list[dict[str, Any]] = []
    # thirty FM15 cases (the shipped rule judges from 30) costing 1,000.00 against a
    # standard of 40,400.83: all low-ratio
    for number in range(30):
        case = f"C{number}"
        events += [
            admitted(hospital, case, f"{case}-a", at=admitted_at),
            line(hospital, case, f"{case}-c", "1000.00", item="CT", category="exam", at=at),
            discharged(hospital, case, f"{case}-d", at),
        ]
    stack.post(events)

    def low_ratio_alerts() -> list[dict[str, Any]]:
        return [
            a
            for a in stack.all_alerts(hospital_id=hospital, kind="rule")
            if a["rule_id"] == "low-ratio-share"
        ]

    stack.wait_for(lambda: low_ratio_alerts(), 60)
    [alert] = low_ratio_alerts()
    assert alert["kind"] == "rule" and alert["case_id"] == ""
    assert (alert["department"], alert["rule_period"]) == ("CARDIO", f"{moment:%Y-%m}")
    assert (alert["level"], alert["transition"], alert["status"]) == ("yellow", "raised", "open")
    assert (alert["detail"]["cases"], alert["detail"]["low_ratio_cases"]) == (30, 30)
    assert alert["rule_name"]["en"] == "Too many low-ratio cases"
    # the live stream carries it (from the start of the history: Last-Event-ID 0)
    assert alert["alert_id"] in streamed_ids(stack, hospital, until=alert["alert_id"])
    # the checks after it (every half second: six in this window) raise nothing more
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert len(low_ratio_alerts()) == 1
        time.sleep(0.25)
