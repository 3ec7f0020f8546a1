"""The projection on the case API: the case page's data, sorted lists, the open cases'
summary, forecast alerts by kind, and precheck at discharge."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from services.alerting.projector import write_batch
from services.api.deps import get_now
from services.casecost.pricing import ratio_of
from tests.api.conftest import Api
from tests.api.corefactory import FM15_EMPLOYEE, CaseBuilder

NOW = datetime.fromisoformat("2026-03-05T12:00:00+08:00")


async def now() -> datetime:
    return NOW


@pytest.fixture(autouse=True)
def fixed_clock(api: Api) -> None:
    api.app.dependency_overrides[get_now] = now


@pytest.fixture
def any_api(any_api: Api) -> Api:
    """The app on PostgreSQL, or on a SQLite file (where money is stored as text, so
    sorting must compare numbers), on the tests' clock."""
    any_api.app.dependency_overrides[get_now] = now
    return any_api


async def write(api: Api, *builders: CaseBuilder) -> None:
    await write_batch(api.engine, api.sessions, [b.to_dict() for b in builders], [])


def stay() -> CaseBuilder:
    """Admitted 2 March; a 20000.00 operation and 1000.00 of drugs that day, nothing on
    the 3rd, 2000.00 of drugs and a 500.00 credit on the 4th."""
    return (
        CaseBuilder("H001", "C1")
        .admit()
        .cost("20000.00", category="procedure", item_code="OP", ordered_by="dr-a")
        .cost("1000.00", at="2026-03-02T10:00:00+08:00", ordered_by="dr-b")
        .cost("2000.00", at="2026-03-04T09:00:00+08:00")
        .cost("500.00", kind="credit", at="2026-03-04T10:00:00+08:00", ordered_by="dr-b")
    )


async def test_the_case_page_has_its_projection_thresholds_days_and_doctors(api: Api) -> None:
    await write(api, stay())
    case = (await api.client.get("/v1/hospitals/H001/cases/C1")).json()

    assert case["total_cost"] == "22500.00"
    # 3 days observed; (22500 - the 20000 operation) / 3 x 4.5 days left = 3750.00
    assert case["projected_total"] == "26250.00"
    assert case["projected_ratio"] == str(ratio_of(Decimal("26250.00"), FM15_EMPLOYEE))
    assert case["los_days"] == 3 and case["avg_los_days"] == "7.5"
    assert case["days_over_avg_stay"] == "-4.5"
    assert case["thresholds"] == {"blue": "0.90", "yellow": "0.95", "red": "1.00"}
    assert case["daily_costs"] == [
        {"day": "2026-03-02", "amount": "21000.00", "cumulative": "21000.00"},
        {"day": "2026-03-03", "amount": "0.00", "cumulative": "21000.00"},
        {"day": "2026-03-04", "amount": "1500.00", "cumulative": "22500.00"},
    ]
    assert case["cost_by_doctor"] == [
        {"ordered_by": "dr-a", "amount": "20000.00"},
        {"ordered_by": None, "amount": "2000.00"},
        {"ordered_by": "dr-b", "amount": "500.00"},
    ]
    listed = (await api.client.get("/v1/hospitals/H001/cases")).json()["items"][0]
    assert {key: listed[key] for key in ("projected_total", "days_over_avg_stay")} == {
        "projected_total": "26250.00",
        "days_over_avg_stay": "-4.5",
    }
    assert "daily_costs" not in listed


async def test_the_thresholds_shown_are_those_in_force_for_the_case(api: Api) -> None:
    await write(api, stay())
    changed = await api.client.put(
        "/v1/alert-thresholds",
        json={
            "hospital_id": "H001",
            "drg_code": "FM15",
            "blue": "0.8",
            "yellow": "0.925",
            "red": "1.1",
        },
    )
    assert changed.status_code == 200, changed.text
    case = (await api.client.get("/v1/hospitals/H001/cases/C1")).json()
    assert case["thresholds"] == {"blue": "0.80", "yellow": "0.925", "red": "1.10"}


async def test_a_discharged_case_is_projected_at_its_cost_and_its_stay_stops(api: Api) -> None:
    await write(api, stay().discharge(at="2026-03-12T10:00:00+08:00"))
    case = (await api.client.get("/v1/hospitals/H001/cases/C1")).json()
    assert case["projected_total"] == case["total_cost"] == "22500.00"
    assert case["los_days"] == 10 and case["days_over_avg_stay"] == "2.5"
    # the stay's days run to the day of discharge, the last ones without costs
    days = case["daily_costs"]
    assert (days[0]["day"], days[-1]["day"], len(days)) == ("2026-03-02", "2026-03-12", 11)
    assert days[-1] == {"day": "2026-03-12", "amount": "0.00", "cumulative": "22500.00"}


async def test_the_daily_costs_start_on_the_day_of_admission(api: Api) -> None:
    late_first_charge = (
        CaseBuilder("H001", "C7")
        .admit(at="2026-03-01T23:30:00+08:00")
        .cost("100.00", at="2026-03-02T16:30:00Z")  # 00:30 on the 3rd in Shanghai
    )
    await write(api, late_first_charge)
    case = (await api.client.get("/v1/hospitals/H001/cases/C7")).json()
    assert case["daily_costs"] == [
        {"day": "2026-03-01", "amount": "0.00", "cumulative": "0.00"},
        {"day": "2026-03-02", "amount": "0.00", "cumulative": "0.00"},
        {"day": "2026-03-03", "amount": "100.00", "cumulative": "100.00"},
    ]


async def pages(api: Api, order: str, limit: int = 2, **filters: str) -> list[str]:
    """Every case id, page by page, in the order asked for."""
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"order": order, "limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        response = await api.client.get("/v1/hospitals/H001/cases", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(item["case_id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def ward() -> list[CaseBuilder]:
    """Cases with distinct, equal and missing sort values (GB21: standard 1000, 4 days)."""

    def case(case_id: str, admitted: str, *amounts: str, drg: str | None = "GB21") -> CaseBuilder:
        builder = CaseBuilder("H001", case_id).admit(drg_code=drg, at=admitted)
        for amount in amounts:
            builder.cost(amount, at=admitted)
        return builder

    return [
        case("A", "2026-03-04T08:00:00+08:00", "900.00"),  # ratio 0.9, 1 day in
        case("B", "2026-02-20T08:00:00+08:00", "1200.00"),  # ratio 1.2, 13 days in
        case("C", "2026-03-01T08:00:00+08:00", "900.00"),  # ratio 0.9 (tie with A), 4 days
        case("D", "2026-03-03T08:00:00+08:00", "50.00", drg=None),  # unpriced: no ratio
        case("E", "2026-03-02T08:00:00+08:00", "10000.00", drg="FM15"),  # 0.2475, 3 of 7.5
        case("F", "2026-02-27T08:00:00+08:00", "300.00").discharge(at="2026-03-01T09:00:00+08:00"),
    ]


async def test_cases_sort_descending_with_nulls_last_across_pages(any_api: Api) -> None:
    api = any_api
    await write(api, *ward())
    assert await pages(api, "ratio") == ["B", "A", "C", "F", "E", "D"]
    assert await pages(api, "total_cost", limit=1) == ["E", "B", "A", "C", "F", "D"]
    # each on its own clock (its latest event's day): A, B and C have one day observed, so
    # B 1200 x 4 = 4800, A and C 900 x 4 = 3600; E 10000 + 10000 x 6.5 = 75000 (1.86)
    assert await pages(api, "projected_ratio", limit=4) == ["B", "A", "C", "E", "F", "D"]
    # days over: B 13 - 4 = 9, C 4 - 4 = 0, A 1 - 4, E 3 - 7.5; F stopped at 2 - 4; D none
    assert await pages(api, "days_over_avg_stay") == ["B", "C", "F", "A", "E", "D"]
    assert await pages(api, "ratio", level="none,blue,red") == ["B", "A", "C", "F", "E"]
    items = (await api.client.get("/v1/hospitals/H001/cases", params={"order": "ratio"})).json()
    by_id = {item["case_id"]: item for item in items["items"]}
    assert by_id["B"]["days_over_avg_stay"] == "9.0"
    assert by_id["D"]["days_over_avg_stay"] is None and by_id["D"]["projected_total"] is None


async def test_a_cursor_of_another_order_is_refused(api: Api) -> None:
    await write(api, *ward())
    first = (
        await api.client.get("/v1/hospitals/H001/cases", params={"order": "ratio", "limit": 1})
    ).json()
    other = await api.client.get(
        "/v1/hospitals/H001/cases", params={"order": "total_cost", "cursor": first["next_cursor"]}
    )
    assert other.status_code == 400, other.text
    plain = await api.client.get(
        "/v1/hospitals/H001/cases", params={"cursor": first["next_cursor"]}
    )
    assert plain.status_code == 400, plain.text
    unknown = await api.client.get("/v1/hospitals/H001/cases", params={"order": "age"})
    assert unknown.status_code == 422


async def test_the_open_cases_summary(any_api: Api) -> None:
    api = any_api
    surgery = (
        CaseBuilder("H001", "S1")
        .admit(department="SURG", drg_code="GB21", at="2026-03-04T08:00:00+08:00")
        .cost("950.00", department="SURG", at="2026-03-04T09:00:00+08:00")
    )
    await write(api, *ward(), surgery)
    summary = (await api.client.get("/v1/hospitals/H001/open-cases/summary")).json()
    assert summary["by_level"] == {
        "none": {"cases": 1, "total_cost": "10000.00", "standard_cost": str(FM15_EMPLOYEE)},
        "blue": {"cases": 2, "total_cost": "1800.00", "standard_cost": "2000.00"},
        "yellow": {"cases": 1, "total_cost": "950.00", "standard_cost": "1000.00"},
        "red": {"cases": 1, "total_cost": "1200.00", "standard_cost": "1000.00"},
        "unpriced": {"cases": 1, "total_cost": "50.00", "standard_cost": "0.00"},
    }
    assert summary["money_at_risk"] == "200.00"  # B only; F is discharged
    # CARD: A 3600 (over 2600), B 4800 (3800), C 3600 (2600), D 50 at cost, E 75000
    # SURG: S1 950 x 4 = 3800 (over 2800)
    e_projected = Decimal("75000.00")
    assert summary["departments"] == [
        {
            "department": "CARD",
            "open_cases": 5,
            "total_cost": "13050.00",
            "standard_cost": str(Decimal("3000.00") + FM15_EMPLOYEE),
            "projected_total": str(Decimal("12050.00") + e_projected),
            "projected_overspend": str(Decimal("9000.00") + e_projected - FM15_EMPLOYEE),
        },
        {
            "department": "SURG",
            "open_cases": 1,
            "total_cost": "950.00",
            "standard_cost": "1000.00",
            "projected_total": "3800.00",
            "projected_overspend": "2800.00",
        },
    ]
    only = (
        await api.client.get("/v1/hospitals/H001/open-cases/summary", params={"department": "SURG"})
    ).json()
    assert [d["department"] for d in only["departments"]] == ["SURG"]
    assert only["money_at_risk"] == "0.00" and only["by_level"]["yellow"]["cases"] == 1


async def test_an_empty_hospital_has_a_summary_of_zeros(api: Api) -> None:
    summary = (await api.client.get("/v1/hospitals/H009/open-cases/summary")).json()
    assert summary["money_at_risk"] == "0.00" and summary["departments"] == []
    assert {level: body["cases"] for level, body in summary["by_level"].items()} == dict.fromkeys(
        ("none", "blue", "yellow", "red", "unpriced"), 0
    )


def forecast_case() -> CaseBuilder:
    """FM15 (40400.83, 7.5 days): 6000.00 a day over the first three days projects to
    18000 + 6000 x 4.5 = 45000.00, red, while the cost is at 45%; then it escalates."""
    return (
        CaseBuilder("H001", "F1")
        .admit()
        .cost("6000.00")
        .cost("6000.00", at="2026-03-03T09:00:00+08:00")
        .cost("6000.00", at="2026-03-04T09:00:00+08:00")
        .cost("20500.00", category="consumable", at="2026-03-04T10:00:00+08:00")
    )


async def test_forecast_alerts_are_listed_with_their_kind_and_projection(api: Api) -> None:
    await write(api, forecast_case())
    everything = (await api.client.get("/v1/alerts")).json()["items"]
    assert [(a["kind"], a["level"], a["transition"]) for a in reversed(everything)] == [
        ("forecast", "red", "projected"),
        ("level", "yellow", "escalated"),
    ]
    forecast = (await api.client.get("/v1/alerts", params={"kind": "forecast"})).json()["items"]
    assert len(forecast) == 1
    (alert,) = forecast
    assert alert["projected_total"] == "45000.00"
    assert alert["projected_ratio"] == str(ratio_of(Decimal("45000.00"), FM15_EMPLOYEE))
    assert (alert["total_cost"], alert["previous_level"]) == ("18000.00", "none")
    levels = (await api.client.get("/v1/alerts", params={"kind": "level"})).json()["items"]
    assert [(a["kind"], a["projected_total"]) for a in levels] == [("level", None)]
    both = (await api.client.get("/v1/alerts", params={"kind": "level,forecast"})).json()
    assert len(both["items"]) == 2
    refused = await api.client.get("/v1/alerts", params={"kind": "rules"})
    assert refused.status_code == 422
    # the lifecycle works the same: acknowledge, then resolve for review
    acked = await api.client.post(f"/v1/alerts/{alert['alert_id']}/ack", json={})
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    resolved = await api.client.post(
        f"/v1/alerts/{alert['alert_id']}/resolve",
        json={"reason": "new_technique", "note": "planned hybrid procedure"},
    )
    assert resolved.json()["status"] == "under_review", resolved.text
    timeline = (await api.client.get("/v1/hospitals/H001/cases/F1/timeline")).json()
    assert "projected to reach red at discharge: 45000.00" in timeline["entries"][0]["summary"]


async def test_precheck_says_where_the_case_lands_at_discharge(api: Api) -> None:
    await write(api, stay())
    answer = await api.client.post(
        "/v1/hospitals/H001/cases/C1/precheck",
        json={"items": [{"item_code": "STENT", "quantity": "1", "unit_price": "15000.00"}]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["projected"]["total_cost"] == "37500.00"
    landing = body["projected_at_discharge"]
    assert landing["total_cost"] == "41250.00"  # 26250.00 projected + 15000.00
    assert landing["level"] == "red"
    assert landing["ratio"] == str(ratio_of(Decimal("41250.00"), FM15_EMPLOYEE))
