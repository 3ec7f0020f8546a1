"""GET /v1/alerts over alerts raised by the real core and written by the projector."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.alerting.projector import write_batch
from tests.api.conftest import Api
from tests.api.corefactory import CaseBuilder

ALERT_FIELDS = {
    "alert_id",
    "hospital_id",
    "case_id",
    "department",
    "drg_code",
    "level",
    "previous_level",
    "transition",
    "total_cost",
    "standard_cost",
    "ratio",
    "event_id",
    "occurred_at",
    "raised_at",
    "top_contributors",
    "kind",
    "projected_total",
    "projected_ratio",
    "target_period",
    "target_measure",
    "rule_id",
    "rule_version",
    "rule_name",
    "rule_period",
    "detail",
    "text_zh",
    "text_en",
}
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def journey(hospital: str, case_id: str, department: str, start: datetime) -> CaseBuilder:
    """none -> blue -> yellow -> red -> (credit) none: four alerts."""
    case = CaseBuilder(hospital, case_id, clock=start).admit(department=department)
    case.cost("37000.00", item_code="STENT", category="consumable", department=department)
    case.cost("2000.00", item_code="D1", department=department)
    case.cost("2000.00", item_code="D2", department=department)
    case.cost(
        "30000.00", item_code="STENT", category="consumable", kind="credit", department=department
    )
    return case


def build() -> list[CaseBuilder]:
    # clocks interleave, so raised_at order differs from case order
    return [
        journey("H001", "C1", "CARD", T0),
        journey("H001", "C2", "SURG", T0 + timedelta(milliseconds=500)),
        journey("H002", "C1", "CARD", T0 + timedelta(seconds=60)),
    ]


def all_alerts(cases: list[CaseBuilder]) -> list[dict[str, Any]]:
    alerts = [a for c in cases for a in (c.state.alerts if c.state else [])]
    return sorted(alerts, key=lambda a: (a["raised_at"], a["alert_id"]), reverse=True)


async def write(api: Api, cases: list[CaseBuilder]) -> None:
    await write_batch(api.engine, api.sessions, [c.to_dict() for c in cases], [])


async def collect(api: Api, limit: int, **filters: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        response = await api.client.get("/v1/alerts", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination does not end")


async def test_alert_records_carry_the_design_fields(api: Api) -> None:
    cases = build()
    await write(api, cases)

    items = (
        await api.client.get("/v1/alerts", params={"case_id": "C1", "hospital_id": "H001"})
    ).json()["items"]

    assert [(a["previous_level"], a["level"], a["transition"]) for a in reversed(items)] == [
        ("none", "blue", "escalated"),
        ("blue", "yellow", "escalated"),
        ("yellow", "red", "escalated"),
        ("red", "none", "resolved"),
    ]
    for item in items:
        # the design's fields, and where the alert's lifecycle stands (issue 5)
        assert set(item) == ALERT_FIELDS | {"status"}
        assert item["status"] == "open"
        assert (item["kind"], item["projected_total"], item["projected_ratio"]) == (
            "level",
            None,
            None,
        )
    red = items[1]
    assert red["total_cost"] == "41000.00"
    assert red["standard_cost"] == "40400.83"
    assert red["ratio"] == "1.0148"
    assert red["department"] == "CARD" and red["drg_code"] == "FM15"
    assert red["event_id"] == "C1-ev4"
    assert red["top_contributors"][0] == {
        "item_code": "STENT",
        "item_name": "item STENT",
        "category": "consumable",
        "quantity": "1",
        "amount": "37000.00",
    }
    resolved = items[0]
    assert resolved["total_cost"] == "11000.00"
    assert datetime.fromisoformat(resolved["occurred_at"]) == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    source = {a["alert_id"]: a for a in all_alerts(cases)}
    for item in items:
        assert datetime.fromisoformat(item["raised_at"]) == datetime.fromisoformat(
            source[item["alert_id"]]["raised_at"]
        )


async def test_pages_newest_first_without_gaps_or_duplicates(api: Api) -> None:
    cases = build()
    await write(api, cases)
    want = [a["alert_id"] for a in all_alerts(cases)]
    assert len(want) == 12

    items = await collect(api, 5)

    ids = [a["alert_id"] for a in items]
    assert len(ids) == len(set(ids)) == 12
    assert ids == want
    raised = [datetime.fromisoformat(a["raised_at"]) for a in items]
    assert raised == sorted(raised, reverse=True)


async def test_paging_is_stable_while_new_alerts_arrive(api: Api) -> None:
    cases = build()
    await write(api, cases)
    first = (await api.client.get("/v1/alerts", params={"limit": 5})).json()
    newcomer = journey("H003", "C7", "CARD", T0 + timedelta(hours=1))
    await write(api, [newcomer])
    rest = []
    cursor = first["next_cursor"]
    while cursor:
        body = (await api.client.get("/v1/alerts", params={"limit": 5, "cursor": cursor})).json()
        rest += body["items"]
        cursor = body["next_cursor"]
    ids = [a["alert_id"] for a in first["items"] + rest]
    assert ids == [a["alert_id"] for a in all_alerts(cases)]
    # and a fresh read starts with the newcomer's alerts
    top = (await api.client.get("/v1/alerts", params={"limit": 4})).json()["items"]
    assert {a["hospital_id"] for a in top} == {"H003"}


@pytest.mark.parametrize(
    "filters",
    [
        {"hospital_id": "H002"},
        {"hospital_id": "H001", "case_id": "C2"},
        {"case_id": "C1"},
        {"department": "SURG"},
        {"level": "red"},
        {"level": "blue,yellow"},
        {"level": "none", "hospital_id": "H001"},
    ],
)
async def test_filters(api: Api, filters: dict[str, str]) -> None:
    cases = build()
    await write(api, cases)
    want = [
        a["alert_id"]
        for a in all_alerts(cases)
        if all(a[k] in v.split(",") if k == "level" else a[k] == v for k, v in filters.items())
    ]
    assert 0 < len(want) < 12

    items = await collect(api, 2, **filters)
    assert [a["alert_id"] for a in items] == want


async def test_since_filter(api: Api) -> None:
    cases = build()
    await write(api, cases)
    alerts = all_alerts(cases)
    # everything raised from the H002 case's clock on
    since = T0 + timedelta(seconds=60)
    want = [a["alert_id"] for a in alerts if datetime.fromisoformat(a["raised_at"]) >= since]
    assert len(want) == 4

    items = await collect(api, 3, since=since.isoformat())
    assert [a["alert_id"] for a in items] == want
    # the same instant in another offset
    local = since.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+08:00").tzinfo)
    items = await collect(api, 3, since=local.isoformat())
    assert [a["alert_id"] for a in items] == want


@pytest.mark.parametrize(
    "params",
    [
        {"level": "unpriced"},
        {"level": "crimson"},
        {"since": "last tuesday"},
        {"limit": 0},
        {"limit": 501},
    ],
)
async def test_bad_query_is_422(api: Api, params: dict[str, Any]) -> None:
    response = await api.client.get("/v1/alerts", params=params)
    assert response.status_code == 422, response.text
    assert {e["field"] for e in response.json()["errors"]} == {f"query.{next(iter(params))}"}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", ["garbage!!", "%%%", b64(b"[]"), b64(b"[1, 2]"), b64(b"{}")])
async def test_bad_cursor_is_400(api: Api, cursor: str) -> None:
    response = await api.client.get("/v1/alerts", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert "cursor" in response.json()["detail"]


SEQ_CURSOR_500 = (
    "decode_cursor (services/api/pagination.py) only checks the list length; "
    "services/api/alerts/service.py:82 and services/api/deadletters/router.py:52 then call "
    "int(before[0]) (ValueError/TypeError) or send an int beyond BIGINT to PostgreSQL, "
    "so a well-formed but forged cursor gives 500 instead of 400"
)


@pytest.mark.parametrize("path", ["/v1/alerts", "/v1/dead-letters"])
@pytest.mark.parametrize("raw", [b'["x"]', b"[null]", b"[[1]]", b"[99999999999999999999999]"])
async def test_forged_sequence_cursor_is_400(api: Api, path: str, raw: bytes) -> None:
    response = await api.client.get(path, params={"cursor": b64(raw)})
    assert response.status_code == 400, response.text


async def test_writing_the_same_states_twice_adds_no_alert(api: Api) -> None:
    cases = build()
    await write(api, cases)
    before = await api.rows("SELECT seq, alert_id FROM alerts ORDER BY seq")

    await write(api, cases)
    await write(api, list(reversed(cases)))

    assert await api.rows("SELECT seq, alert_id FROM alerts ORDER BY seq") == before
    items = await collect(api, 500)
    assert len(items) == 12 == len({a["alert_id"] for a in items})


async def test_redelivered_event_and_later_state_add_only_new_alerts(api: Api) -> None:
    case = CaseBuilder("H001", "C1", clock=T0).admit().cost("37000.00")
    await write(api, [case])
    assert await api.scalar("SELECT count(*) FROM alerts") == 1
    # a redelivered event changes nothing; a real escalation adds exactly one alert
    assert case.state is not None
    case.cost("5000.00", item_code="D9")
    await write(api, [case])
    await write(api, [case])
    items = (await api.client.get("/v1/alerts")).json()["items"]
    assert [(a["previous_level"], a["level"]) for a in items] == [("blue", "red"), ("none", "blue")]
    assert Decimal(items[0]["total_cost"]) == Decimal("42000.00")


async def test_alert_inserts_take_turns_so_seq_order_is_commit_order(api: Api) -> None:
    """While one transaction inserting alerts is open, another waits (PostgreSQL): a
    reader following seq can never see seq n+1 committed before seq n."""
    from sqlalchemy import text

    from services.alerting.alert_inserts import ALERT_LOCK

    async with api.engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), ALERT_LOCK)
        writing = asyncio.create_task(write(api, build()))
        await asyncio.sleep(0.5)
        assert not writing.done()
        assert await api.scalar("SELECT count(*) FROM alerts") == 0
        await holder.rollback()  # ends the transaction, releasing the lock
    await asyncio.wait_for(writing, 10)
    assert await api.scalar("SELECT count(*) FROM alerts") == 12
