"""GET /v1/hospitals/{h}/cases[/{c}] over rows written by the worker's projector."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from services.alerting.projector import write_batch
from services.casecost.pricing import ratio_of
from tests.api.conftest import Api
from tests.api.corefactory import FM15_EMPLOYEE, CaseBuilder

CASE_FIELDS = {
    "hospital_id",
    "case_id",
    "status",
    "department",
    "drg_code",
    "drg_name",
    "insurance_scheme",
    "standard_cost",
    "total_cost",
    "ratio",
    "level",
    "cost_by_category",
    "admitted_at",
    "discharged_at",
    "los_days",
    "avg_los_days",
    "events_applied",
    "last_event_at",
}


def ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def is_money(value: str) -> bool:
    return isinstance(value, str) and "." in value and len(value.split(".")[1]) == 2


async def write(api: Api, *builders: CaseBuilder) -> None:
    await write_batch(api.engine, api.sessions, [b.to_dict() for b in builders], [])


async def test_open_case_has_the_design_fields_and_exact_money(api: Api) -> None:
    case = (
        CaseBuilder("H001", "C1")
        .admit()
        .cost("15000", category="drug", item_code="D001")
        .cost("0.10", category="lab", item_code="L001")
        .cost("22000.5", category="consumable", item_code="S001")
    )
    await write(api, case)

    response = await api.client.get("/v1/hospitals/H001/cases/C1")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= CASE_FIELDS
    total = Decimal("37000.60")
    assert body["hospital_id"] == "H001" and body["case_id"] == "C1"
    assert body["status"] == "open"
    assert body["department"] == "CARD"
    assert body["drg_code"] == "FM15"
    assert body["drg_name"] == "Coronary stent, no MCC"
    assert body["insurance_scheme"] == "employee"
    assert body["standard_cost"] == "40400.83" == str(FM15_EMPLOYEE)
    assert body["total_cost"] == "37000.60"
    assert body["ratio"] == str(ratio_of(total, FM15_EMPLOYEE)) == "0.9158"
    assert body["level"] == "blue"
    assert body["cost_by_category"] == {"drug": "15000.00", "lab": "0.10", "consumable": "22000.50"}
    assert all(
        is_money(v)
        for v in [body["standard_cost"], body["total_cost"], *body["cost_by_category"].values()]
    )
    # the parts reconcile to the total, to the cent
    assert sum(Decimal(v) for v in body["cost_by_category"].values()) == Decimal(body["total_cost"])
    assert ts(body["admitted_at"]) == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert body["discharged_at"] is None
    # days are counted on the hospital's calendar (the admission's +08:00 offset)
    today = datetime.now(timezone(timedelta(hours=8))).date()
    assert body["los_days"] == max(1, (today - datetime(2026, 3, 2).date()).days)
    assert body["avg_los_days"] == "7.5"
    assert body["events_applied"] == 4
    assert ts(body["last_event_at"]) == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


async def test_discharged_unpriced_and_override_cases(api: Api) -> None:
    discharged = (
        CaseBuilder("H001", "C2")
        .admit(department="SURG", drg_code="GB21")
        .cost("2500.00", category="procedure")
        .discharge()
    )
    # a charge before any admission: no DRG known yet
    unpriced = CaseBuilder("H001", "C3").cost("12.00", category="bed", item_code="B1")
    await write(api, discharged, unpriced)

    body = (await api.client.get("/v1/hospitals/H001/cases/C2")).json()
    assert body["status"] == "discharged"
    assert body["standard_cost"] == "1000.00"  # the explicit standard, not weight x rate
    assert body["total_cost"] == "2500.00"
    assert body["ratio"] == "2.5000"
    assert body["level"] == "red"
    assert ts(body["discharged_at"]) == datetime(2026, 3, 6, 2, 0, tzinfo=UTC)
    assert body["los_days"] == 4
    assert body["avg_los_days"] == "4.0"
    assert body["ratio_flag"] == "high"

    body = (await api.client.get("/v1/hospitals/H001/cases/C3")).json()
    assert body["level"] == "unpriced"
    assert body["standard_cost"] is None and body["ratio"] is None
    assert body["drg_code"] is None and body["drg_name"] is None
    assert body["total_cost"] == "12.00"
    assert body["cost_by_category"] == {"bed": "12.00"}
    assert body["admitted_at"] is None and body["los_days"] is None


LOS_IN_UTC = (
    "services/api/cases/service.py los_days(): counts calendar days on the UTC dates of "
    "admitted_at/discharged_at, not on the hospital's local dates; a +08:00 stay from "
    "03-02 07:00 to 03-05 10:00 (3 local days) is reported as 4"
)


async def test_los_days_counts_the_hospitals_calendar_days(api: Api) -> None:
    case = (
        CaseBuilder("H001", "C9")
        .admit(at="2026-03-02T07:00:00+08:00")
        .discharge(at="2026-03-05T10:00:00+08:00")
    )
    await write(api, case)
    body = (await api.client.get("/v1/hospitals/H001/cases/C9")).json()
    assert body["los_days"] == 3


async def test_projection_upsert_shows_the_latest_state(api: Api) -> None:
    case = CaseBuilder("H001", "C1").admit().cost("100.00")
    await write(api, case)
    case.cost("50.00", item_code="D002")
    await write(api, case)
    body = (await api.client.get("/v1/hospitals/H001/cases/C1")).json()
    assert body["total_cost"] == "150.00"
    assert body["events_applied"] == 3
    assert await api.scalar("SELECT count(*) FROM cases") == 1


@pytest.mark.parametrize("path", ["/v1/hospitals/H001/cases/NOPE", "/v1/hospitals/H404/cases/C1"])
async def test_unknown_case_is_404(api: Api, path: str) -> None:
    await write(api, CaseBuilder("H001", "C1").admit())
    response = await api.client.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["detail"]


def build_ward() -> list[CaseBuilder]:
    """25 cases of H001 with known departments, levels and statuses (+ one of H002)."""
    cases = []
    for i in range(1, 26):
        department = ["CARD", "SURG", "ONCO"][i % 3]
        builder = CaseBuilder("H001", f"C{i:02d}").admit(department=department)
        # cycle none / blue / yellow / red against 40400.83
        amount = ["1000.00", "37000.00", "39000.00", "41000.00"][i % 4]
        builder.cost(amount, department=department)
        if i % 5 == 0:
            builder.discharge()
        cases.append(builder)
    return cases


def expected(cases: list[CaseBuilder], **filters: Any) -> list[str]:
    chosen = []
    for case in cases:
        state = case.state
        assert state is not None
        if "department" in filters and state.department != filters["department"]:
            continue
        if "level" in filters and state.level not in filters["level"].split(","):
            continue
        if "status" in filters and state.status != filters["status"]:
            continue
        chosen.append(case.case_id)
    return sorted(chosen)


async def collect(api: Api, path: str, limit: int, **filters: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **filters}
        if cursor is not None:
            params["cursor"] = cursor
        response = await api.client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        pages += 1
        ids += [item["case_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 50, "pagination does not end"


async def test_list_paginates_by_case_id_without_gaps_or_duplicates(api: Api) -> None:
    cases = build_ward()
    other = CaseBuilder("H002", "C01").admit()
    await write(api, *cases, other)

    ids, pages = await collect(api, "/v1/hospitals/H001/cases", 7)

    assert len(ids) == len(set(ids)) == 25
    assert ids == sorted(c.case_id for c in cases)
    assert pages == 4
    first = (await api.client.get("/v1/hospitals/H001/cases", params={"limit": 7})).json()
    assert set(first["items"][0]) >= CASE_FIELDS
    # the H002 case is not listed under H001 and vice versa
    assert (await collect(api, "/v1/hospitals/H002/cases", 7))[0] == ["C01"]


async def test_cursor_is_stable_while_rows_change(api: Api) -> None:
    cases = build_ward()
    await write(api, *cases)
    page = (await api.client.get("/v1/hospitals/H001/cases", params={"limit": 7})).json()
    # a case before the cursor changes and a new one appears after it
    cases[0].cost("1.00", item_code="X1")
    late = CaseBuilder("H001", "C99").admit()
    await write(api, cases[0], late)
    rest = []
    cursor = page["next_cursor"]
    while cursor:
        body = (
            await api.client.get("/v1/hospitals/H001/cases", params={"limit": 7, "cursor": cursor})
        ).json()
        rest += [item["case_id"] for item in body["items"]]
        cursor = body["next_cursor"]
    seen = [item["case_id"] for item in page["items"]] + rest
    assert seen == sorted([c.case_id for c in cases] + ["C99"])


@pytest.mark.parametrize(
    "filters",
    [
        {"department": "CARD"},
        {"level": "blue"},
        {"level": "yellow,red"},
        {"status": "discharged"},
        {"status": "open"},
        {"department": "SURG", "level": "none,red", "status": "open"},
    ],
)
async def test_list_filters(api: Api, filters: dict[str, str]) -> None:
    cases = build_ward()
    await write(api, *cases)
    want = expected(cases, **filters)
    assert want, "the fixture must give each filter something to find"
    assert len(want) < 25

    ids, _ = await collect(api, "/v1/hospitals/H001/cases", 3, **filters)
    assert ids == want
    response = await api.client.get("/v1/hospitals/H001/cases", params={**filters, "limit": 500})
    for item in response.json()["items"]:
        for key, value in filters.items():
            assert item[key] in value.split(",")


@pytest.mark.parametrize(
    "params",
    [
        {"level": "purple"},
        {"level": "blue,"},
        {"status": "closed"},
        {"limit": 0},
        {"limit": 501},
    ],
)
async def test_list_refuses_bad_filters(api: Api, params: dict[str, Any]) -> None:
    response = await api.client.get("/v1/hospitals/H001/cases", params=params)
    assert response.status_code == 422, response.text
    assert {e["field"] for e in response.json()["errors"]} == {f"query.{next(iter(params))}"}


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "%%%",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b'["C01", "C02"]').decode(),
    ],
)
async def test_garbage_cursor_is_400(api: Api, cursor: str) -> None:
    await write(api, *build_ward()[:3])
    response = await api.client.get("/v1/hospitals/H001/cases", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert "cursor" in response.json()["detail"]
