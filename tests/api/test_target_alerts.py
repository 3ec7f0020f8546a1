"""Department alerts: the worker's target watch over the indicators' November cases, on
PostgreSQL and SQLite, read back through the API as its users read them.

CARD discharged three cases in November 2026 by the 20th (C1, C2, C3: 70,000.00, so
23,333.33 per case); at 30 / 20 days that projects to 105,000.00 for the month.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from services.alerting.targetwatch import sweep
from services.casecost.pricing import PriceBook
from services.casecost.targets import WatchRules
from services.settings import CommonSettings
from tests.api import test_indicators as indicator_tests
from tests.api.conftest import Api

database_url = indicator_tests.database_url
service = indicator_tests.service
seeded = indicator_tests.seeded
key_for = indicator_tests.key_for

ZONE = CommonSettings().zone
BOOK = PriceBook()  # no thresholds of the hospital's own: blue 0.90, yellow 0.95, red 1.00
# three cases are enough for cost per case here (ten by default)
RULES = WatchRules(min_cases=3)
NOV_20 = datetime.fromisoformat("2026-11-20T18:00:00+08:00")
CARD_NOVEMBER = "/v1/hospitals/H001/targets/CARD/2026-11"
WEEKLY = "/v1/hospitals/H001/briefings/weekly"


async def watch(api: Api, now: datetime = NOV_20, rules: WatchRules = RULES) -> int:
    return await sweep(api.engine, api.sessions, BOOK, ZONE, now, rules)


async def target_alerts(api: Api, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/alerts", params={"kind": "target"}, headers=headers or {})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))  # oldest first


async def test_a_department_over_its_pace_raises_one_alert_per_measure(seeded: Api) -> None:
    await seeded.client.put(
        CARD_NOVEMBER, json={"cases": 4, "cost_per_case": "20000.00", "total_cost": "80000.00"}
    )

    assert await watch(seeded) == 2

    total, per_case = await target_alerts(seeded)
    common = {
        "kind": "target",
        "hospital_id": "H001",
        "case_id": "",
        "department": "CARD",
        "drg_code": None,
        "level": "red",
        "previous_level": "none",
        "transition": "escalated",
        "target_period": "2026-11",
        "top_contributors": [],
        "status": "open",
    }
    assert total == total | common
    assert total["target_measure"] == "total_cost"
    # 70,000.00 so far; 105,000.00 projected against 80,000.00
    assert (total["total_cost"], total["standard_cost"]) == ("70000.00", "80000.00")
    assert (total["projected_total"], total["ratio"]) == ("105000.00", "1.3125")
    assert total["projected_ratio"] == "1.3125"
    assert per_case == per_case | common
    assert per_case["target_measure"] == "cost_per_case"
    assert (per_case["total_cost"], per_case["standard_cost"]) == ("23333.33", "20000.00")
    assert (per_case["ratio"], per_case["projected_total"]) == ("1.1667", None)
    assert datetime.fromisoformat(total["occurred_at"]) == NOV_20


async def test_a_pass_that_finds_nothing_new_raises_nothing(seeded: Api) -> None:
    await seeded.client.put(CARD_NOVEMBER, json={"total_cost": "80000.00"})
    assert await watch(seeded) == 1
    assert await watch(seeded) == 0
    # passes at once (two workers) raise it once between them
    await seeded.client.put(CARD_NOVEMBER, json={"total_cost": "200000.00"})
    await asyncio.gather(watch(seeded), watch(seeded))
    assert [(a["previous_level"], a["level"]) for a in await target_alerts(seeded)] == [
        ("none", "red"),
        ("red", "none"),
    ]


async def test_an_adjusted_target_moves_the_level_with_a_hold_on_the_way_down(
    seeded: Api,
) -> None:
    await seeded.client.put(CARD_NOVEMBER, json={"total_cost": "104000.00"})
    assert await watch(seeded) == 1  # 105,000 / 104,000: red
    # 105,000 / 106,000 = 0.9906: below red, but red holds down to 0.98
    await seeded.client.put(CARD_NOVEMBER, json={"total_cost": "106000.00"})
    assert await watch(seeded) == 0
    # 105,000 / 108,000 = 0.9722: yellow
    await seeded.client.put(CARD_NOVEMBER, json={"total_cost": "108000.00"})
    assert await watch(seeded) == 1
    # 105,000 / 130,000 = 0.8077: below every threshold
    await seeded.client.put(CARD_NOVEMBER, json={"total_cost": "130000.00"})
    assert await watch(seeded) == 1

    alerts = await target_alerts(seeded)
    assert [(a["transition"], a["level"], a["ratio"]) for a in alerts] == [
        ("escalated", "red", "1.0096"),
        ("de-escalated", "yellow", "0.9722"),
        ("resolved", "none", "0.8077"),
    ]


async def test_the_first_days_of_a_month_and_a_thin_month_raise_nothing(seeded: Api) -> None:
    await seeded.client.put(
        CARD_NOVEMBER, json={"cost_per_case": "1000.00", "total_cost": "1000.00"}
    )
    # the 6th: too early to judge the month
    assert await watch(seeded, datetime.fromisoformat("2026-11-06T12:00:00+08:00")) == 0
    # ten cases by default before cost per case is judged: CARD has three
    assert await watch(seeded, rules=WatchRules()) == 1
    [alert] = await target_alerts(seeded)
    assert alert["target_measure"] == "total_cost"


async def test_a_month_without_a_target_is_judged_by_a_twelfth_of_its_year(seeded: Api) -> None:
    # 1,200,000.00 a year: 100,000.00 in November, against the projected 105,000.00
    await seeded.client.put(
        "/v1/hospitals/H001/targets/CARD/2026", json={"total_cost": "1200000.00"}
    )

    assert await watch(seeded) == 1  # the year as a whole is far below its target

    [alert] = await target_alerts(seeded)
    assert (alert["target_period"], alert["standard_cost"], alert["level"]) == (
        "2026-11",
        "100000.00",
        "red",
    )


async def test_department_alerts_follow_the_scope_and_the_lifecycle(seeded: Api) -> None:
    await seeded.client.put(CARD_NOVEMBER, json={"total_cost": "80000.00"})
    await watch(seeded)
    card = await key_for(seeded, "Dr Card", "department_head", ["H001"], ["CARD"])
    surg = await key_for(seeded, "Dr Surg", "department_head", ["H001"], ["SURG"])

    [alert] = await target_alerts(seeded, card)
    assert await target_alerts(seeded, surg) == []
    refused = await seeded.client.post(f"/v1/alerts/{alert['alert_id']}/ack", json={}, headers=surg)
    assert refused.status_code == 404

    acknowledged = await seeded.client.post(
        f"/v1/alerts/{alert['alert_id']}/ack",
        json={"note": "two TAVI cases this month; pace reviewed"},
        headers=card,
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    resolved = await seeded.client.post(
        f"/v1/alerts/{alert['alert_id']}/resolve",
        json={"reason": "new_technique", "note": "TAVI programme started in November"},
        headers=card,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "under_review"


async def test_the_weekly_briefing_lists_department_alerts_apart_from_red_cases(
    seeded: Api,
) -> None:
    await seeded.client.put(CARD_NOVEMBER, json={"total_cost": "80000.00"})
    await watch(seeded)  # 20 November: week 2026-W47
    params = {"department": "CARD", "week": "2026-W47"}

    briefing = (await seeded.client.get(WEEKLY, params=params)).json()

    [alert] = [a for a in briefing["alerts"] if a["kind"] == "target"]
    assert (alert["target_period"], alert["target_measure"], alert["level"]) == (
        "2026-11",
        "total_cost",
        "red",
    )
    assert all(case["case_id"] for case in briefing["red_cases"])
    csv_text = (await seeded.client.get(WEEKLY, params={**params, "format": "csv"})).text
    assert "科室目标 2026-11 总费用" in csv_text
    page = (await seeded.client.get(WEEKLY, params={**params, "format": "html", "lang": "en"})).text
    assert "department target 2026-11 total cost" in page
