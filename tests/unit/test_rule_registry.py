"""The rule registry's import plan, and switches in the evaluators (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.casecost.rules import (
    CaseRules,
    DepartmentPeriod,
    RuleSet,
    RuleSwitches,
    evaluate_department,
)
from services.reference.exceptions import RuleFilesRefused
from services.reference.registry import (
    API_SOURCE,
    RULE_ADAPTER,
    StoredRule,
    plan_import,
    rule_content,
)

ZONE = ZoneInfo("Asia/Shanghai")


def rule(rule_id: str = "large-order", version: int = 1, **over: Any) -> Any:
    data: dict[str, Any] = {
        "id": rule_id,
        "version": version,
        "name": {"zh": "单笔医嘱超限", "en": "Unusually large order"},
        "kind": "order_bound",
        "severity": "yellow",
        "params": {"bounds": {"drug": {"max_amount": "10000"}}},
    }
    data.update(over)
    return RULE_ADAPTER.validate_python(data)


def files(*rules: Any, name: str = "/etc/drgwatch/rules/local.yaml") -> RuleSet:
    return RuleSet(rules=tuple(rules), sources={r.id: name for r in rules})


def stored(r: Any, source: str = "file:local.yaml", in_force: bool = True) -> StoredRule:
    return StoredRule(r.id, r.version, rule_content(r), source, in_force)


def actions(report: Any) -> dict[str, str]:
    return {change.rule_id: change.action for change in report.changes}


def test_a_new_rule_is_added_and_an_unchanged_one_left() -> None:
    known = rule("known")
    report = plan_import({"known": stored(known)}, files(known, rule("fresh")))
    assert actions(report) == {"known": "unchanged", "fresh": "added"}
    assert report.changed
    assert report.lines() == ["fresh: added (version 1)"]


def test_a_higher_file_version_is_a_new_version() -> None:
    report = plan_import(
        {"large-order": stored(rule())},
        files(rule(version=2, severity="red")),
    )
    [change] = report.changes
    assert (change.action, change.version, change.message) == ("updated", 2, "version 1 -> 2")


def test_changed_content_under_the_same_version_is_refused_naming_file_and_rule() -> None:
    with pytest.raises(RuleFilesRefused) as refused:
        plan_import({"large-order": stored(rule())}, files(rule(severity="red")))
    [problem] = refused.value.problems
    assert problem.file == "/etc/drgwatch/rules/local.yaml"
    assert problem.rule == "large-order"
    assert problem.field == "version"
    assert "bump its version" in str(problem)
    assert str(problem).startswith("/etc/drgwatch/rules/local.yaml: rule large-order: version:")


def test_one_refusal_refuses_the_whole_import() -> None:
    with pytest.raises(RuleFilesRefused):
        plan_import(
            {"large-order": stored(rule())},
            files(rule(severity="red"), rule("fresh")),
        )


def test_an_older_file_version_is_kept_as_the_api_left_it_and_said_so() -> None:
    edited = rule(version=3, severity="red")
    report = plan_import({"large-order": stored(edited, API_SOURCE)}, files(rule(version=2)))
    [change] = report.changes
    assert (change.action, change.version, change.file_version) == ("kept", 3, 2)
    assert "through the API" in change.message
    assert "kept at version 3" in change.message
    assert not report.changed


def test_a_file_rule_no_file_holds_is_retired_and_an_api_rule_is_not() -> None:
    from_file, from_api = rule("gone"), rule("by-hand")
    report = plan_import(
        {"gone": stored(from_file), "by-hand": stored(from_api, API_SOURCE)}, files()
    )
    assert actions(report) == {"gone": "retired"}
    assert report.changed
    assert "no rule file holds it" in report.changes[0].message


def test_a_retired_rule_written_again_is_back_in_force() -> None:
    back = rule("back")
    report = plan_import({"back": stored(back, in_force=False)}, files(back))
    assert actions(report) == {"back": "restored"}
    assert report.changed


def test_decimals_compare_as_written() -> None:
    # the same rule read again: the same content, whatever YAML made of the numbers
    once = rule(params={"bounds": {"drug": {"max_amount": Decimal("10000")}}})
    again = rule(params={"bounds": {"drug": {"max_amount": "10000"}}})
    assert actions(plan_import({"large-order": stored(once)}, files(again))) == {
        "large-order": "unchanged"
    }


# --- switches in evaluation ------------------------------------------------------------------


def test_switches_take_a_rule_off_for_a_hospital_or_a_department() -> None:
    rules = RuleSet(rules=(rule(),))
    switches = RuleSwitches(
        {
            ("large-order", "H001", None): False,  # off for H001 ...
            ("large-order", "H001", "ICU"): True,  # ... but for its ICU
            ("large-order", "H002", "CARD"): False,  # off for one department of H002
        }
    )
    compiled = CaseRules.compile(rules, ZONE, switches)
    on = {
        (hospital, department): bool(compiled.applicable(hospital, department).order_bound)
        for hospital, department in [
            ("H001", "CARD"),
            ("H001", None),
            ("H001", "ICU"),
            ("H002", "CARD"),
            ("H002", "SURG"),
            ("H003", "CARD"),
        ]
    }
    assert on == {
        ("H001", "CARD"): False,
        ("H001", None): False,
        ("H001", "ICU"): True,
        ("H002", "CARD"): False,
        ("H002", "SURG"): True,
        ("H003", "CARD"): True,
    }
    assert CaseRules.compile(rules, ZONE).applicable("H001", "CARD").order_bound


def test_department_rules_skip_a_switched_off_department() -> None:
    growth = RULE_ADAPTER.validate_python(
        {
            "id": "cost-per-case-growth",
            "version": 1,
            "name": {"zh": "例均费用增长", "en": "Cost per case growth"},
            "kind": "cost_per_case_growth",
            "severity": "yellow",
        }
    )
    period = DepartmentPeriod(
        "H001",
        "CARD",
        "2026-11",
        cases=10,
        cost_per_case=Decimal("13000"),
        last_year_cost_per_case=Decimal("10000"),
    )
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert len(evaluate_department([growth], period, {}, now)) == 1
    off = RuleSwitches({("cost-per-case-growth", "H001", "CARD"): False})
    assert evaluate_department([growth], period, {}, now, off) == []
    elsewhere = RuleSwitches({("cost-per-case-growth", "H001", "SURG"): False})
    assert len(evaluate_department([growth], period, {}, now, elsewhere)) == 1
