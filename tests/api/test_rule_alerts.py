"""Rule alerts through the API: acknowledged and resolved like any alert, on the case's
timeline, in the case's explanation (and the alert detail's), in the weekly briefing;
a department rule's finding (no case) handled alike; subscriptions that ask for them.

The case's findings are raised by the real cost core with the rules drgwatch ships and
written by the worker's projector; the department finding by the pure department
evaluator, inserted as the worker inserts it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import insert

from services.alerting.projector import alert_row
from services.casecost.rules import DepartmentPeriod, evaluate_department
from services.cli.briefing import summary
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files
from services.storage.models import AlertRecord
from tests.api.conftest import Api
from tests.api.corefactory import RULES_PRICE_BOOK, CaseBuilder
from tests.api.test_alert_lifecycle import LI, WANG, ZHAO, as_, client, post, write
from tests.api.test_indicators import database_url, service

# the fixtures: identities with real API keys; the app on PostgreSQL and on SQLite
__all__ = ["client", "database_url", "service"]

RAISED = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def ruled_case(case_id: str = "C1", department: str = "CARD") -> CaseBuilder:
    """A stay in week 2026-W48 that breaks four shipped rules: a CT again the next day
    (repeat-exam), a 37,000 stent (large-order; consumables 98%: category-share; the case
    turns blue), a lab test four times in a day (same-day-repeats, red)."""
    case = CaseBuilder("H001", case_id, clock=RAISED, price_book=RULES_PRICE_BOOK)
    case.admit(department=department, at="2026-11-24T08:00:00+08:00")
    for day in ("24", "25"):
        case.cost(
            "300.00",
            category="exam",
            item_code="CT",
            department=department,
            at=f"2026-11-{day}T09:00:00+08:00",
        )
    case.cost(
        "37000.00",
        category="consumable",
        item_code="STENT",
        department=department,
        at="2026-11-25T10:00:00+08:00",
    )
    for minute in range(4):
        case.cost(
            "20.00",
            category="lab",
            item_code="LAB",
            department=department,
            at=f"2026-11-26T09:0{minute}:00+08:00",
        )
    return case


async def rule_alerts(api: Api, case_id: str = "C1") -> dict[str, str]:
    """The case's rule alert ids by rule."""
    rows = await api.rows(
        "SELECT rule_id, alert_id FROM alerts WHERE kind = 'rule' AND case_id = :case_id",
        case_id=case_id,
    )
    return {rule_id: alert_id for rule_id, alert_id in rows}


async def department_finding(api: Api, department: str = "CARD") -> dict[str, Any]:
    """Cost per case up 20% on the same month last year: the shipped department rule's
    finding, inserted as the worker inserts it."""
    period = DepartmentPeriod(
        hospital_id="H001",
        department=department,
        period="2026-11",
        cases=30,
        cost_per_case=Decimal("12000.00"),
        last_year_cost_per_case=Decimal("10000.00"),
    )
    rules = load_rule_files(DEFAULT_RULES_DIR).department_rules
    [finding] = evaluate_department(rules, period, {}, RAISED)
    async with api.sessions() as db_session:
        await db_session.execute(insert(AlertRecord).values(alert_row(finding)))
        await db_session.commit()
    return finding


async def test_the_shipped_rules_raise_the_cases_findings(api: Api) -> None:
    await write(api, ruled_case())
    assert set(await rule_alerts(api)) == {
        "repeat-exam",
        "large-order",
        "category-share",
        "same-day-repeats",
    }


async def test_a_rule_alert_is_acknowledged_resolved_and_shown_on_the_timeline(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, ruled_case())
    repeat = (await rule_alerts(api))["repeat-exam"]

    acked = await post(client, repeat, "ack", WANG, note="second CT ordered by the surgeon")
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged" and acked.json()["kind"] == "rule"
    resolved = await post(client, repeat, "resolve", WANG, reason="over_treatment", note="dup")
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    again = await post(client, repeat, "ack", WANG)
    assert again.status_code == 409

    listed = (
        await client.get(
            "/v1/alerts", params={"kind": "rule", "status": "resolved"}, headers=as_(ZHAO)
        )
    ).json()["items"]
    assert [(a["alert_id"], a["rule_id"]) for a in listed] == [(repeat, "repeat-exam")]

    timeline = await client.get("/v1/hospitals/H001/cases/C1/timeline", headers=as_(WANG))
    assert timeline.status_code == 200, timeline.text
    entries = timeline.json()["entries"]
    of_repeat = [e for e in entries if e["alert_id"] == repeat]
    assert [(e["kind"], e["level"]) for e in of_repeat] == [
        ("alert", "yellow"),
        ("acknowledged", "yellow"),
        ("resolved", "yellow"),
    ]
    assert of_repeat[0]["summary"] == (
        "rule Repeated exam or lab (yellow):"
        " item CT (CT) charged again on 2026-11-25, within 3 days of 2026-11-24"
    )
    assert of_repeat[0]["alert"]["text_zh"].startswith("item CT（CT）于 2026-11-25 再次收费")
    summaries = [e["summary"] for e in entries if e["kind"] == "alert"]
    assert "escalated none -> blue: cost 37600.00 of 40400.83 (93.07% of the DRG standard)" in (
        summaries
    )
    assert sum(s.startswith("rule ") for s in summaries) == 4


async def test_the_case_explanation_lists_the_rule_findings_and_says_the_most_severe(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, ruled_case())
    ids = await rule_alerts(api)

    response = await client.get("/v1/hospitals/H001/cases/C1", headers=as_(WANG))

    assert response.status_code == 200, response.text
    explanation = response.json()["explanation"]
    findings = explanation["rule_findings"]
    assert explanation["rule_findings_total"] == 4
    # newest first (the stent raised two at the same moment)
    assert findings[0]["rule_id"] == "same-day-repeats" and findings[-1]["rule_id"] == "repeat-exam"
    assert {f["rule_id"] for f in findings[1:3]} == {"large-order", "category-share"}
    assert findings[0] == {
        "alert_id": ids["same-day-repeats"],
        "rule_id": "same-day-repeats",
        "rule_version": 1,
        "rule_name": {
            "zh": "同日重复收费（疑似分解收费）",
            "en": "Same item charged repeatedly in one day",
        },
        "severity": "red",
        "level": "red",
        "text_zh": "item LAB（LAB）2026-11-26 当日收费 4 次，超过 3 次，疑似分解收费",
        "text_en": "item LAB (LAB) charged 4 times on 2026-11-26, more than 3: possible splitting",
        "raised_at": findings[0]["raised_at"],
        "occurred_at": "2026-11-26T01:03:00Z",
    }
    raised = [datetime.fromisoformat(f["raised_at"]) for f in findings]
    assert raised == sorted(raised, reverse=True)
    # the main cost driver first, then the most severe finding
    assert explanation["summary_en"] == (
        "the costliest item is 1 x item STENT, 37000.00, 98% of cost;"
        ' rule alert "Same item charged repeatedly in one day": item LAB (LAB) charged 4 times'
        " on 2026-11-26, more than 3: possible splitting (4 rule alerts in all)"
    )
    assert explanation["summary_zh"] == (
        "最大单项为item STENT ×1，37000.00 元，占费用 98%；"
        "规则预警「同日重复收费（疑似分解收费）」：item LAB（LAB）2026-11-26 当日收费 4 次，"
        "超过 3 次，疑似分解收费（共 4 条规则预警）"
    )

    # the alert detail of a rule alert, and of the case's level alert, carry it too
    for alert_id in (ids["repeat-exam"], await level_alert(api, "C1")):
        detail = await client.get(f"/v1/alerts/{alert_id}", headers=as_(WANG))
        assert detail.status_code == 200, detail.text
        assert detail.json()["explanation"] == explanation


async def level_alert(api: Api, case_id: str) -> str:
    return str(
        await api.scalar(
            "SELECT alert_id FROM alerts WHERE kind = 'level' AND case_id = :case_id",
            case_id=case_id,
        )
    )


async def test_a_forecast_alerts_detail_carries_the_explanation(
    api: Api, client: httpx.AsyncClient
) -> None:
    case = CaseBuilder("H001", "F1", clock=RAISED).admit(at="2026-11-24T08:00:00+08:00")
    for day in ("24", "25", "26"):
        case.cost("9000.00", item_code=f"D{day}", at=f"2026-11-{day}T09:00:00+08:00")
    await write(api, case)
    forecast = await api.scalar("SELECT alert_id FROM alerts WHERE kind = 'forecast'")
    assert forecast is not None

    detail = await client.get(f"/v1/alerts/{forecast}", headers=as_(WANG))

    assert detail.status_code == 200, detail.text
    explanation = detail.json()["explanation"]
    assert explanation["driver"]["kind"] == "item"
    assert explanation["rule_findings"] == [] and explanation["rule_findings_total"] == 0
    assert explanation["summary_en"] == "the costliest item is 1 x item D24, 9000.00, 33% of cost"


async def test_the_explanation_shows_only_findings_the_caller_may_read(
    api: Api, client: httpx.AsyncClient
) -> None:
    """A case found in surgery, then moved to cardiology: the cardiology head reads the
    case, not surgery's findings; the insurance office reads both."""
    case = ruled_case(department="SURG")
    case.transfer("CARD", at="2026-11-26T12:00:00+08:00")
    case.cost(
        "300.00", category="exam", item_code="CT", department="CARD", at="2026-11-27T09:00:00+08:00"
    )
    await write(api, case)

    head = (await client.get("/v1/hospitals/H001/cases/C1", headers=as_(WANG))).json()
    office = (await client.get("/v1/hospitals/H001/cases/C1", headers=as_(ZHAO))).json()

    assert [f["rule_id"] for f in head["explanation"]["rule_findings"]] == ["repeat-exam"]
    assert head["explanation"]["rule_findings_total"] == 1
    assert "same-day-repeats" not in head["explanation"]["summary_en"]
    assert office["explanation"]["rule_findings_total"] == 5
    assert "Same item charged repeatedly" in office["explanation"]["summary_en"]


async def test_a_department_rule_alert_has_no_case_and_is_acted_on_by_its_department(
    api: Api, client: httpx.AsyncClient
) -> None:
    finding = await department_finding(api)
    alert_id = finding["alert_id"]

    listed = (await client.get("/v1/alerts", params={"kind": "rule"}, headers=as_(WANG))).json()
    [alert] = listed["items"]
    assert (alert["case_id"], alert["department"], alert["rule_id"]) == (
        "",
        "CARD",
        "cost-per-case-growth",
    )
    assert alert["rule_name"] == {
        "zh": "科室例均费用增长过快",
        "en": "Department cost per case rising",
    }
    assert alert["rule_period"] == "2026-11" and alert["detail"]["growth"] == "0.2000"
    other_head = await client.get(f"/v1/alerts/{alert_id}", headers=as_(LI))
    assert other_head.status_code == 404
    assert (await client.get("/v1/alerts", headers=as_(LI))).json()["items"] == []

    detail = await client.get(f"/v1/alerts/{alert_id}", headers=as_(WANG))
    assert detail.status_code == 200, detail.text
    assert detail.json()["explanation"] is None  # no case to explain
    acked = await post(client, alert_id, "ack", WANG, note="new cath lab opened in November")
    assert acked.status_code == 200, acked.text
    resolved = await post(client, alert_id, "resolve", WANG, reason="new_technique")
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "under_review"
    reviewed = await post(client, alert_id, "review", ZHAO, decision="approved")
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["status"] == "resolved"


async def test_the_weekly_briefing_lists_rule_alerts_in_both_languages(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, ruled_case())
    await department_finding(api)
    params = {"department": "CARD", "week": "2026-W48"}
    weekly = "/v1/hospitals/H001/briefings/weekly"

    briefing = (await client.get(weekly, params=params, headers=as_(ZHAO))).json()

    rules = [a for a in briefing["alerts"] if a["kind"] == "rule"]
    assert sorted((a["case_id"], a["rule_id"]) for a in rules) == [
        ("", "cost-per-case-growth"),
        ("C1", "category-share"),
        ("C1", "large-order"),
        ("C1", "repeat-exam"),
        ("C1", "same-day-repeats"),
    ]
    assert summary(briefing)[-1] == (
        "rule alerts: 5 (category-share 1, cost-per-case-growth 1, large-order 1,"
        " repeat-exam 1, same-day-repeats 1)"
    )
    growth = next(a for a in rules if not a["case_id"])
    assert growth["rule_name"]["zh"] == "科室例均费用增长过快"
    assert growth["text_en"].startswith("CARD cost per case in 2026-11 is 12000.00, up 20% on")
    html_zh = await client.get(
        weekly, params={**params, "format": "html", "lang": "zh"}, headers=as_(ZHAO)
    )
    assert html_zh.status_code == 200, html_zh.text
    assert "规则预警 · 科室例均费用增长过快：CARD 2026-11 例均费用 12000.00 元" in html_zh.text
    assert "<td>科室 CARD 2026-11</td>" in html_zh.text
    assert "规则预警 · 同日重复收费（疑似分解收费）：item LAB（LAB）2026-11-26 当日收费 4 次" in (
        html_zh.text
    )
    csv_en = await client.get(
        weekly, params={**params, "format": "csv", "lang": "en"}, headers=as_(ZHAO)
    )
    assert csv_en.status_code == 200, csv_en.text
    assert (
        'department CARD 2026-11,CARD,yellow,"Rule alert · Department cost per case rising:'
        " CARD cost per case in 2026-11 is 12000.00" in csv_en.text
    )
    assert "Rule alert · Repeated exam or lab: item CT (CT) charged again on 2026-11-25" in (
        csv_en.text
    )


async def test_a_subscription_may_ask_for_rule_alerts(api: Api, client: httpx.AsyncClient) -> None:
    body = {"url": "https://hooks.example/drg", "format": "wecom", "kinds": ["rule"]}
    created = await client.post("/v1/subscriptions", json=body, headers=as_(WANG))
    assert created.status_code == 201, created.text
    assert created.json()["kinds"] == ["rule"]
    every = {**body, "kinds": ["rule", "level", "forecast", "target"]}
    created = await client.post("/v1/subscriptions", json=every, headers=as_(ZHAO))
    assert created.status_code == 201, created.text
    assert created.json()["kinds"] == ["forecast", "level", "rule", "target"]
    patched = await client.patch(
        f"/v1/subscriptions/{created.json()['id']}",
        json={"kinds": ["level", "rule"]},
        headers=as_(ZHAO),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["kinds"] == ["level", "rule"]


async def test_a_long_list_of_findings_is_bounded_and_the_most_severe_still_said(
    service: Api,
) -> None:
    """A lab test four times on the first day (red), then a CT every day for two weeks
    (a repeat each day after the first, yellow; past the average stay, blue): the newest
    ten are listed, the red one, the oldest, is still the one the summary states (on
    PostgreSQL and SQLite)."""
    case = CaseBuilder("H001", "LONG", clock=RAISED, price_book=RULES_PRICE_BOOK)
    case.admit(at="2026-11-01T08:00:00+08:00")
    for minute in range(4):
        case.cost("20.00", category="lab", item_code="LAB", at=f"2026-11-01T09:0{minute}:00+08:00")
    for day in range(1, 15):
        case.cost("300.00", category="exam", item_code="CT", at=f"2026-11-{day:02d}T10:00:00+08:00")
    await write(service, case)

    response = await service.client.get("/v1/hospitals/H001/cases/LONG")

    assert response.status_code == 200, response.text
    explanation = response.json()["explanation"]
    rules = [f["rule_id"] for f in explanation["rule_findings"]]
    assert explanation["rule_findings_total"] == 15  # 1 red, 13 repeats, 1 stay
    assert len(rules) == 10 and "same-day-repeats" not in rules
    assert rules[0] == "repeat-exam"
    assert (
        'rule alert "Same item charged repeatedly in one day": item LAB (LAB) charged 4'
        in (explanation["summary_en"])
    )
    assert explanation["summary_en"].endswith("(15 rule alerts in all)")


async def test_rule_counts_give_each_rules_findings_and_those_still_open(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, ruled_case(), ruled_case("C2", department="SURG"))
    await department_finding(api)
    repeats = await rule_alerts(api)
    await post(client, repeats["repeat-exam"], "resolve", WANG, reason="over_treatment")
    await post(client, repeats["large-order"], "ack", WANG)

    def counted(body: dict[str, Any]) -> dict[str, tuple[int, int, str]]:
        return {item["rule_id"]: (item["found"], item["open"], item["level"]) for item in body}

    since = {"since": "2026-11-24T00:00:00+08:00"}
    office = await client.get("/v1/alerts/rule-counts", params=since, headers=as_(ZHAO))
    assert office.status_code == 200, office.text
    body = office.json()
    assert counted(body["items"]) == {
        "repeat-exam": (2, 1, "yellow"),  # C1's resolved, C2's open
        "large-order": (2, 2, "yellow"),  # acknowledged is still the department's
        "category-share": (2, 2, "yellow"),
        "same-day-repeats": (2, 2, "red"),
        "cost-per-case-growth": (1, 1, "yellow"),
    }
    # most still open first, then most found, then by id
    assert [item["rule_id"] for item in body["items"]][:3] == [
        "category-share",
        "large-order",
        "same-day-repeats",
    ]
    growth = body["items"][-1]
    assert growth["rule_name"] == {
        "zh": "科室例均费用增长过快",
        "en": "Department cost per case rising",
    }
    # a department head counts their own department's findings only
    head = await client.get("/v1/alerts/rule-counts", params=since, headers=as_(LI))
    assert counted(head.json()["items"]) == {
        "repeat-exam": (1, 1, "yellow"),
        "large-order": (1, 1, "yellow"),
        "category-share": (1, 1, "yellow"),
        "same-day-repeats": (1, 1, "red"),
    }
    # findings raised before `since` are not counted: the department's at 09:00:00 local
    # time, the cases' a few seconds later
    later = {"since": "2026-11-24T09:00:01+08:00"}
    after = await client.get("/v1/alerts/rule-counts", params=later, headers=as_(ZHAO))
    assert after.status_code == 200
    assert set(counted(after.json()["items"])) == set(counted(body["items"])) - {
        "cost-per-case-growth"
    }
    missing = await client.get("/v1/alerts/rule-counts", headers=as_(ZHAO))
    assert missing.status_code == 422
