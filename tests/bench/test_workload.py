"""The benchmark's workload is the realistic stream the issue describes, and its recount
and drgwatch check catch a wrong result."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from decimal import Decimal

import orjson

from services.bench.runner import Outcome, check_drgwatch
from services.bench.workload import (
    ExpectedFindings,
    expected,
    expected_findings,
    generate,
)
from services.casecost.rules import RULE_NAMESPACE, RuleFile, RuleSet

# rules the recount redoes, with bounds the workload crosses (the shipped ones may not)
RULES = RuleSet(
    tuple(
        RuleFile.model_validate(
            {
                "version": 1,
                "rules": [
                    {
                        "id": "large-order",
                        "version": 3,
                        "name": {"zh": "单笔医嘱超限", "en": "Large order"},
                        "kind": "order_bound",
                        "severity": "yellow",
                        "params": {
                            "bounds": {
                                "drug": {"max_amount": "10000", "max_quantity": "100"},
                                "consumable": {"max_amount": "30000", "max_quantity": "50"},
                                "exam": {"max_amount": "3000", "max_quantity": "3"},
                                "lab": {"max_amount": "2000", "max_quantity": "5"},
                            }
                        },
                    },
                    {
                        "id": "category-share",
                        "version": 1,
                        "name": {"zh": "占比过高", "en": "Share too high"},
                        "kind": "category_share",
                        "severity": "yellow",
                        "params": {
                            "shares": {"drug": "0.50", "consumable": "0.60"},
                            "min_total": "5000",
                        },
                    },
                    {
                        "id": "daily-spike",
                        "version": 2,
                        "name": {"zh": "突增", "en": "Spike"},
                        "kind": "daily_spike",
                        "severity": "blue",
                    },
                ],
            }
        ).rules
    )
)
LARGE_ORDER, CATEGORY_SHARE = ("large-order", 3), ("category-share", 1)
ORDER_BOUNDS = {
    "drug": (Decimal("10000"), Decimal("100")),
    "consumable": (Decimal("30000"), Decimal("50")),
    "exam": (Decimal("3000"), Decimal("3")),
    "lab": (Decimal("2000"), Decimal("5")),
}


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


def _findings_of(load_findings: ExpectedFindings) -> list[tuple[bytes, bytes]]:
    """The rule alerts a correct worker sends for the recounted findings."""
    alerts = []
    for (rule_id, version), found in load_findings.expected.items():
        for key, period in sorted(found):
            hospital_id, case_id = key.split("/")
            alert = {
                "alert_id": str(uuid.uuid5(RULE_NAMESPACE, f"{rule_id}/{version}/{key}/{period}")),
                "kind": "rule",
                "rule_id": rule_id,
                "rule_version": version,
                "severity": load_findings.rules[rule_id, version],
                "level": load_findings.rules[rule_id, version],
                "transition": "raised",
                "period": period,
                "hospital_id": hospital_id,
                "case_id": case_id,
                "text_zh": "…",
                "text_en": "…",
            }
            alerts.append((key.encode(), orjson.dumps(alert)))
    return alerts


def test_the_findings_recount_and_the_check_of_rule_alerts() -> None:
    load = generate(4_000, 40, seed=6)
    recount = expected(load)
    findings = expected_findings(load, RULES)
    assert findings.rules == {
        LARGE_ORDER: "yellow",
        CATEGORY_SHARE: "yellow",
        ("daily-spike", 2): "blue",
    }
    assert set(findings.expected) == {LARGE_ORDER, CATEGORY_SHARE}
    orders, shares = findings.expected[LARGE_ORDER], findings.expected[CATEGORY_SHARE]
    assert orders and shares  # the workload has both
    # every large order is a charge line over its category's bound, and only those are
    lines = {orjson.loads(m.value)["event_id"]: orjson.loads(m.value) for m in load.messages}
    for key, period in orders:
        line = lines[period.removeprefix("order/")]
        bound_amount, bound_quantity = ORDER_BOUNDS[line["category"]]
        assert line["type"] == "charge" and key.endswith(line["case_id"])
        assert line["category"] in ORDER_BOUNDS  # procedures have no bound here
        assert Decimal(line["amount"]) > bound_amount or Decimal(line["quantity"]) > bound_quantity
    cases = {
        key: {"total_cost": str(c.total), "level": c.level, "events_applied": c.events}
        for key, c in recount.items()
    }
    levels = []
    for key, case in recount.items():
        for number, (previous, level) in enumerate(case.transitions):
            alert = {"alert_id": f"{key}/{number}", "previous_level": previous, "level": level}
            levels.append((key.encode(), orjson.dumps(alert)))
    rule_alerts = _findings_of(findings)
    right = Outcome("drgwatch", report={"cases": cases})
    assert check_drgwatch(right, recount, [*levels, *rule_alerts, *rule_alerts[:2]], findings) == []
    assert right.report["rule_alerts"] == {
        "category-share": len(shares),
        "large-order": len(orders),
    }
    assert right.report["rules_recounted"] == ["category-share@1", "large-order@3"]
    # a finding missing, one with another id, one at another severity, one unknown rule
    forged = orjson.loads(rule_alerts[1][1])
    forged_level = {**orjson.loads(rule_alerts[2][1]), "level": "red"}
    unknown = {**orjson.loads(rule_alerts[3][1]), "rule_id": "made-up"}
    unknown["alert_id"] = str(uuid.uuid5(RULE_NAMESPACE, "elsewhere"))
    wrong = [
        *levels,
        *rule_alerts[4:],
        (rule_alerts[1][0], orjson.dumps({**forged, "alert_id": "not-the-id"})),
        (rule_alerts[2][0], orjson.dumps(forged_level)),
        (rule_alerts[3][0], orjson.dumps(unknown)),
    ]
    outcome = Outcome("drgwatch", report={"cases": cases})
    problems = check_drgwatch(outcome, recount, wrong, findings)
    assert any("findings missing" in problem for problem in problems)  # rule_alerts[0]
    assert any("is not the id of" in problem for problem in problems)
    assert any("raised at red" in problem for problem in problems)
    assert any("made-up@" in p and "not a shipped case rule" in p for p in problems)
    # without the findings (the run without rules) rule alerts are not looked at
    plain = Outcome("drgwatch", report={"cases": cases})
    assert check_drgwatch(plain, recount, wrong) == []
