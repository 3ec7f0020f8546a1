"""schemas/ holds the contracts exactly as the code validates them."""

from __future__ import annotations

from services.casecost.rules import CASE_KINDS, DEPARTMENT_KINDS
from services.contracts import SCHEMA_DIR, contracts, render


def test_schema_files_match_the_models() -> None:
    for name, schema in contracts().items():
        on_disk = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert on_disk == render(schema), f"schemas/{name} is stale: run drgwatch schemas export"


def test_event_schema_names_every_event_type_and_money_as_strings() -> None:
    event = contracts()["event.v1.json"]
    mapping = event["discriminator"]["mapping"]
    assert set(mapping) == {
        "admitted",
        "drg_assigned",
        "transferred",
        "discharged",
        "discharge_cancelled",
        "charge",
        "credit",
    }
    assert "amount" in event["$defs"]["Charge"]["required"]
    # additive: the cancellation needs only the common fields; its reason is optional
    cancelled = event["$defs"]["DischargeCancelled"]
    assert cancelled["required"] == ["event_id", "hospital_id", "case_id", "occurred_at", "type"]
    assert set(cancelled["properties"]) == {
        "event_id",
        "hospital_id",
        "case_id",
        "occurred_at",
        "type",
        "reason",
    }
    assert cancelled["additionalProperties"] is False


def test_case_schema_publishes_the_explanation_as_optional() -> None:
    case = contracts()["case.v1.json"]
    assert case["title"] == "CaseOut"
    assert "explanation" in case["properties"]
    assert "explanation" not in case["required"]  # lists leave it out
    explanation = case["$defs"]["Explanation"]
    assert {"typical_source", "categories", "driver", "summary_zh", "summary_en"} <= set(
        explanation["required"]
    )
    assert explanation["properties"]["typical_source"]["anyOf"] == [
        {"const": "hospital", "type": "string"},
        {"type": "null"},
    ]
    # the case's rule alerts: optional for readers of the earlier contract
    assert {"rule_findings", "rule_findings_total"} <= set(explanation["properties"])
    assert "rule_findings" not in explanation.get("required", [])
    finding = case["$defs"]["RuleFindingExplained"]
    assert set(finding["required"]) == {
        "alert_id",
        "rule_id",
        "rule_version",
        "rule_name",
        "severity",
        "level",
        "occurred_at",
        "text_zh",
        "text_en",
        "raised_at",
    }


def test_rules_schema_names_every_rule_kind() -> None:
    rules = contracts()["rules.v1.json"]
    kinds = set(rules["properties"]["rules"]["items"]["discriminator"]["mapping"])
    assert kinds == {*CASE_KINDS, *DEPARTMENT_KINDS}
    assert rules["properties"]["version"]["const"] == 1
