"""The benchmark's workload is the realistic stream the issue describes, and its recount
and drgwatch check catch a wrong result."""

from __future__ import annotations

import statistics
from collections import Counter
from decimal import Decimal

import orjson

from services.bench.runner import Outcome, check_drgwatch
from services.bench.workload import expected, generate


def test_postings_cases_credits_regroups_and_duplicates() -> None:
    load = generate(20_000, 500, seed=3)
    sizes = [len(posting) for posting in load.postings if posting[0]["type"] != "admitted"]
    assert min(sizes) >= 1 and max(sizes) <= 20
    assert 3 <= statistics.median(sizes) <= 5
    events = {e["event_id"]: e for e in (orjson.loads(m.value) for m in load.messages)}
    kinds = Counter(event["type"] for event in events.values())
    assert kinds["admitted"] == 500 and kinds["credit"] > 100 and kinds["drg_assigned"] > 5
    ids = [orjson.loads(m.value)["event_id"] for m in load.messages]
    assert len(ids) - len(set(ids)) > 50  # postings sent twice
    per_case = Counter(m.key for m in load.messages)
    assert max(per_case.values()) > 5 * statistics.median(per_case.values())  # skewed


def test_the_recount_is_the_plain_sum_of_distinct_lines() -> None:
    load = generate(5_000, 100, seed=4)
    totals: dict[str, Decimal] = {}
    seen: set[str] = set()
    for message in load.messages:
        event = orjson.loads(message.value)
        if event["event_id"] in seen or event["type"] not in ("charge", "credit"):
            continue
        seen.add(event["event_id"])
        sign = 1 if event["type"] == "charge" else -1
        key = message.key.decode()
        totals[key] = totals.get(key, Decimal(0)) + sign * Decimal(event["amount"])
    recount = expected(load)
    assert {key: case.total for key, case in recount.items() if key in totals} == totals
    assert any(case.transitions for case in recount.values())


def test_the_check_finds_a_wrong_total_and_a_missing_alert() -> None:
    load = generate(2_000, 20, seed=5)
    recount = expected(load)
    cases = {
        key: {"total_cost": str(c.total), "level": c.level, "events_applied": c.events}
        for key, c in recount.items()
    }
    alerts = []
    for key, case in recount.items():
        for number, (previous, level) in enumerate(case.transitions):
            alert = {"alert_id": f"{key}/{number}", "previous_level": previous, "level": level}
            alerts.append((key.encode(), orjson.dumps(alert)))
    right = Outcome("drgwatch", report={"cases": cases})
    assert check_drgwatch(right, recount, alerts + alerts[:3]) == []  # redelivery: same ids
    # a forecast alert is no level transition: counted, not compared with the recount
    forecast = {"alert_id": "f1", "kind": "forecast", "previous_level": "none", "level": "red"}
    some_key = next(iter(recount)).encode()
    assert check_drgwatch(right, recount, [*alerts, (some_key, orjson.dumps(forecast))]) == []
    assert right.report["forecast_alerts"] == 1
    some_case = next(iter(cases))
    cases[some_case] = {**cases[some_case], "total_cost": "0.01"}
    wrong = check_drgwatch(Outcome("drgwatch", report={"cases": cases}), recount, alerts[1:])
    assert any("total 0.01" in problem for problem in wrong)
    assert any("alerts" in problem for problem in wrong)
