"""Rule alerts on the real stack: the shipped rules raise each finding once, with its rule,
version, name, sentences and detail, across a worker SIGKILL and a broker lost and
rebuilt from the ledger."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files
from tests.integration.harness import Stack, running_stack
from tests.integration.test_pipeline import _read_alert_events, admitted, line

# the shipped rules' versions: a finding carries its rule's
VERSION = {rule.id: rule.version for rule in load_rule_files(DEFAULT_RULES_DIR).rules}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack on PostgreSQL (production) and on the SQLite file (the embedded default),
    with the rules drgwatch ships, as a hospital runs them out of the box."""
    workdir = tmp_path_factory.mktemp("rules")
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite+aiosqlite:///{workdir / 'drgwatch.db'}"
    rules = {"DRGWATCH_RULES_DIR": str(DEFAULT_RULES_DIR)}
    with running_stack(workdir, database_url, rules) as running:
        yield running


def case_events(h: str, c: str) -> list[dict[str, Any]]:
    """A stay that breaks four shipped rules, each once.

    A 35,000 stent (large-order; consumables then 98% of the cost: category-share), a lab
    test charged five times on one day (same-day-repeats, at the fourth), and a CT again
    two days after the first (repeat-exam). Three days with costs: no daily spike; two
    days of a 7.5-day average stay: not over it; 88% of FM15's standard: no level alert.
    """
    return [
        admitted(h, c, f"{c}-a"),
        line(h, c, f"{c}-stent", "35000.00", item="STENT", at="2026-11-20T10:00:00+08:00"),
        exam(h, c, f"{c}-ct1", "2026-11-20T11:00:00+08:00"),
        *(
            line(
                h,
                c,
                f"{c}-lab{n}",
                "20.00",
                item="LAB",
                category="lab",
                at=f"2026-11-21T09:0{n}:00+08:00",
            )
            for n in range(1, 6)
        ),
        exam(h, c, f"{c}-ct2", "2026-11-22T09:00:00+08:00"),
    ]


def exam(h: str, c: str, n: str, at: str) -> dict[str, Any]:
    """A CT scan charged at `at`."""
    return line(h, c, n, "300.00", item="CT", category="exam", at=at)


def expected_findings(c: str) -> set[tuple[str, str, str]]:
    """(case, rule, period) of every finding `case_events` must raise."""
    return {
        (c, "large-order", f"order/{c}-stent"),
        (c, "category-share", "stay/consumable"),
        (c, "same-day-repeats", "2026-11-21/LAB"),
        (c, "repeat-exam", "2026-11-22/CT"),
    }


def findings_of(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((a["case_id"], a["rule_id"], a["rule_period"]) for a in alerts)


def test_a_case_raises_exactly_its_findings_with_rule_and_sentences(stack: Stack) -> None:
    h, c = f"H{uuid.uuid4().hex[:6]}", "C1"
    events = case_events(h, c)
    stack.post(events)
    expected = expected_findings(c)

    def raised() -> bool:
        return len(stack.all_alerts(hospital_id=h, kind="rule")) >= len(expected)

    stack.wait_for(raised, timeout=30)
    # the same events again (a hospital system retrying): nothing new
    again = stack.post(events)
    assert {result["status"] for result in again["results"]} == {"duplicate"}
    stack.post(
        [
            line(
                h,
                c,
                f"{c}-bed",
                "80.00",
                item="BED",
                category="bed",
                at="2026-11-22T12:00:00+08:00",
            )
        ]
    )
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("events_applied") == len(events) + 1)
    alerts = {a["rule_id"]: a for a in stack.all_alerts(hospital_id=h, kind="rule")}
    assert findings_of(list(alerts.values())) == sorted(expected)
    assert not stack.all_alerts(hospital_id=h, kind="level")

    repeat = alerts["repeat-exam"]
    assert repeat["kind"] == "rule" and repeat["transition"] == "raised"
    assert repeat["rule_version"] == VERSION["repeat-exam"] and repeat["level"] == "yellow"
    assert repeat["rule_name"] == {"zh": "重复检查检验", "en": "Repeated exam or lab"}
    assert repeat["text_zh"] == "item CT（CT）于 2026-11-22 再次收费，3 天内已于 2026-11-20 收费"
    assert repeat["text_en"] == (
        "item CT (CT) charged again on 2026-11-22, within 3 days of 2026-11-20"
    )
    assert repeat["detail"]["other_days"] == ["2026-11-20"] and repeat["event_id"] == f"{c}-ct2"
    assert repeat["case_id"] == c and repeat["department"] == "CARDIO"

    same_day = alerts["same-day-repeats"]
    assert same_day["level"] == "red" and same_day["event_id"] == f"{c}-lab4"
    assert same_day["detail"] == {
        "item_code": "LAB",
        "item_name": "item LAB",
        "category": "lab",
        "day": "2026-11-21",
        "times": "4",
        "max_per_day": 3,
    }
    assert same_day["rule_name"]["en"] == "Same item charged repeatedly in one day"
    assert "当日收费 4 次" in same_day["text_zh"] and "4 times" in same_day["text_en"]

    order = alerts["large-order"]
    assert order["detail"]["amount"] == "35000.00" and order["detail"]["max_amount"] == "30000"
    assert order["text_en"] == (
        "One consumables order of item STENT (STENT): amount 35000.00 over the bound of 30000"
    )
    share = alerts["category-share"]
    assert share["detail"]["category"] == "consumable" and share["detail"]["share"] == "1.0000"
    assert share["rule_name"]["zh"] == "药品或耗材占比过高"
    for alert in alerts.values():
        assert alert["text_zh"] and alert["text_en"] and alert["standard_cost"] == "40400.83"


def test_the_live_stream_pushes_rule_alerts_alone_when_asked(stack: Stack) -> None:
    h, c = f"H{uuid.uuid4().hex[:6]}", "C1"
    stack.post([admitted(h, c, f"{c}-a")])
    params = {"hospital_id": h, "kind": "rule"}
    with httpx.stream("GET", f"{stack.url}/v1/alerts/stream", params=params, timeout=30) as live:
        stack.post(case_events(h, c)[1:])
        received = _read_alert_events(live, 4)
    assert sorted((a["case_id"], a["rule_id"], a["rule_period"]) for _, a in received) == sorted(
        expected_findings(c)
    )
    assert {a["kind"] for _, a in received} == {"rule"}
    for _, alert in received:
        assert alert["rule_name"]["zh"] and alert["text_zh"] and alert["text_en"]
        assert alert["rule_version"] == VERSION[alert["rule_id"]] and alert["detail"]


def test_no_finding_is_lost_or_doubled_across_a_worker_kill_and_a_ledger_replay(
    stack: Stack,
) -> None:
    """SIGKILL the worker while it applies 20 cases' events; then lose the broker and
    rebuild everything from the ledger: each case keeps exactly its four findings, with
    the same ids, and what the rules remember of a case survives (a later repeat is
    raised, the earlier ones are not raised again)."""
    h = f"H{uuid.uuid4().hex[:6]}"
    cases = [f"C{n}" for n in range(20)]
    batch = [event for c in cases for event in case_events(h, c)]
    expected = set().union(*(expected_findings(c) for c in cases))

    def applied() -> int:
        return sum(case["events_applied"] for case in stack.cases(h).values())

    posting = threading.Thread(
        target=lambda: [stack.post(batch[start : start + 20]) for start in range(0, len(batch), 20)]
    )
    posting.start()
    # mid-stream: a third applied, the rest still to come
    stack.wait_for(lambda: applied() >= len(batch) // 3, timeout=60, interval=0.02)
    stack.kill(stack.workers[-1])
    killed_at = applied()
    posting.join(60)
    stack.start_worker()

    def all_raised() -> bool:
        return len(stack.all_alerts(hospital_id=h, kind="rule")) >= len(expected)

    stack.wait_for(lambda: applied() == len(batch), timeout=90, interval=0.25)
    stack.wait_for(all_raised, timeout=30)
    print(f"\nworker killed at {killed_at} of {len(batch)} events applied")
    before = stack.all_alerts(hospital_id=h, kind="rule")
    assert findings_of(before) == sorted(expected)
    assert len({a["alert_id"] for a in before}) == len(before)

    # the broker dies with the changelog; the whole stack comes back from the ledger
    stack.kill(stack.broker)
    stack.kill(stack.api)
    for worker in stack.workers:
        stack.kill(worker)
    stack.start_broker(replay=True)
    stack.start_worker()
    stack.start_api()
    stack.wait_ready()
    late = [exam(h, c, f"{c}-ct3", "2026-11-23T09:00:00+08:00") for c in cases]
    stack.post(late)
    expected |= {(c, "repeat-exam", "2026-11-23/CT") for c in cases}
    stack.wait_for(lambda: applied() == len(batch) + len(late), timeout=90, interval=0.25)
    stack.wait_for(all_raised, timeout=30)
    after = stack.all_alerts(hospital_id=h, kind="rule")
    assert findings_of(after) == sorted(expected)
    assert len({a["alert_id"] for a in after}) == len(after)
    assert {a["alert_id"]: a["raised_at"] for a in before}.items() <= {
        a["alert_id"]: a["raised_at"] for a in after
    }.items()
    new = [a for a in after if a["rule_period"] == "2026-11-23/CT"]
    assert {a["detail"]["other_days"][-1] for a in new} == {"2026-11-22"}
