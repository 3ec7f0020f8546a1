"""A cancelled discharge end to end on the API side: POST /v1/events takes it, and the
case the core reopens is written by the projector as open again: listed with the open
cases, out of the indicators and the department rules' figures (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.alerting.projector import write_batch
from services.alerting.rulefigures import department_figures
from services.api.deps import get_now
from tests.api.conftest import Api
from tests.api.corefactory import CaseBuilder
from tests.api.helpers import HOSPITAL, admitted

NOW = datetime.fromisoformat("2026-03-10T12:00:00+08:00")
ZONE = ZoneInfo("Asia/Shanghai")
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
CATALOGUE: dict[str, Any] = {
    "name": "cancelled discharge test catalogue",
    "effective_from": "2026-01-01",
    "base_rates": {"employee": "12252.70", "resident": "9649.24"},
    "groups": [{"drg_code": "FM15", "name": "Coronary stent", "weight": "3.2973"}],
}


async def now() -> datetime:
    return NOW.astimezone(UTC)


@pytest.fixture
def any_api(any_api: Api) -> Api:
    """The app on PostgreSQL, or on a SQLite file, on the tests' clock."""
    any_api.app.dependency_overrides[get_now] = now
    return any_api


def cancellation(event_id: str, **over: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "discharge_cancelled",
        "hospital_id": HOSPITAL,
        "case_id": "C1",
        "occurred_at": "2026-03-06T12:00:00+08:00",
    } | over


async def test_post_events_takes_a_cancellation_and_names_a_bad_field(api: Api) -> None:
    discharge = {
        "event_id": "dis-1",
        "type": "discharged",
        "hospital_id": HOSPITAL,
        "case_id": "C1",
        "occurred_at": "2026-03-06T10:00:00+08:00",
        "discharged_at": "2026-03-06T10:00:00+08:00",
    }
    body = {
        "events": [
            admitted("adm-1"),
            discharge,
            cancellation("undis-1", reason="discharge recorded on the wrong patient"),
        ]
    }
    response = await api.client.post("/v1/events", json=body)
    assert response.status_code == 202, response.text
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 3
    rows = await api.rows("SELECT event_id, event_type, case_seq FROM ingest_ledger ORDER BY seq")
    assert [(r.event_id, r.event_type, r.case_seq) for r in rows] == [
        ("adm-1", "admitted", 1),
        ("dis-1", "discharged", 2),
        ("undis-1", "discharge_cancelled", 3),
    ]
    resent = body["events"][2]
    again = await api.client.post("/v1/events", json=resent)
    assert again.status_code == 202 and again.json()["duplicates"] == 1, again.text
    # the same id with other content (no reason) is refused, not a second cancellation
    changed = await api.client.post("/v1/events", json=cancellation("undis-1", reason=None))
    assert changed.status_code in (409, 422), changed.text
    assert {error["field"] for error in changed.json()["errors"]} == {"event_id"}
    assert len(await api.rows("SELECT seq FROM ingest_ledger")) == 3

    for bad, field in (
        (cancellation("undis-2", reason=""), "reason"),
        (cancellation("undis-3", discharged_at="2026-03-06T12:00:00+08:00"), "discharged_at"),
        (cancellation("undis-4", occurred_at="yesterday"), "occurred_at"),
    ):
        refused = await api.client.post("/v1/events", json=bad)
        assert refused.status_code == 422, refused.text
        assert field in {error["field"] for error in refused.json()["errors"]}, refused.text


async def list_ids(api: Api, status: str) -> list[str]:
    response = await api.client.get(f"/v1/hospitals/{HOSPITAL}/cases", params={"status": status})
    assert response.status_code == 200, response.text
    return [item["case_id"] for item in response.json()["items"]]


async def march_cases(api: Api) -> tuple[int, int]:
    response = await api.client.get(f"/v1/hospitals/{HOSPITAL}/indicators", params=MARCH)
    assert response.status_code == 200, response.text
    overall = response.json()["overall"]
    return overall["cases"], overall["high_ratio_cases"]


async def department_cases(api: Api) -> int:
    async with api.sessions() as db_session:
        found = await department_figures(
            db_session=db_session, hospital_ids=None, months=["2026-03"], now=NOW, zone=ZONE
        )
    return sum(figures.period.cases for figures in found)


async def test_a_reopened_case_lists_as_open_and_leaves_the_indicators(any_api: Api) -> None:
    response = await any_api.client.post("/v1/drg-catalogues", json=CATALOGUE)
    assert response.status_code == 201, response.text
    case = (
        CaseBuilder(HOSPITAL, "C1")
        .admit()
        .cost("90000.00", item_code="DRUG")  # over 2 x 40400.83
        .discharge("2026-03-06T10:00:00+08:00")
    )
    other = CaseBuilder(HOSPITAL, "C2").admit().cost("100.00")
    await write_batch(any_api.engine, any_api.sessions, [case.to_dict(), other.to_dict()], [])
    assert await list_ids(any_api, "discharged") == ["C1"]
    assert await march_cases(any_api) == (1, 1)
    assert await department_cases(any_api) == 1

    case.cancel_discharge("2026-03-06T12:00:00+08:00")
    await write_batch(any_api.engine, any_api.sessions, [case.to_dict()], [])

    assert sorted(await list_ids(any_api, "open")) == ["C1", "C2"]
    assert await list_ids(any_api, "discharged") == []
    detail = (await any_api.client.get(f"/v1/hospitals/{HOSPITAL}/cases/C1")).json()
    assert (detail["status"], detail["discharged_at"], detail["ratio_flag"]) == ("open", None, None)
    assert detail["total_cost"] == "90000.00" and detail["level"] == "red"
    # an open stay: days so far (2 to 10 March), and projected at its pace again: 90000.00
    # of drugs over 2 to 6 March (the cancellation's day), 2.5 of 7.5 days to go
    assert detail["los_days"] == 8
    assert detail["projected_total"] == "135000.00"
    assert await march_cases(any_api) == (0, 0)
    assert await department_cases(any_api) == 0

    # a late charge counts exactly; the real discharge closes the case again
    case.cost("0.10", at="2026-03-07T09:00:00+08:00").cost("0.20", at="2026-03-07T10:00:00+08:00")
    case.discharge("2026-03-09T10:00:00+08:00")
    await write_batch(any_api.engine, any_api.sessions, [case.to_dict()], [])
    detail = (await any_api.client.get(f"/v1/hospitals/{HOSPITAL}/cases/C1")).json()
    assert (detail["status"], detail["total_cost"]) == ("discharged", "90000.30")
    assert detail["discharged_at"].startswith("2026-03-09T10:00:00")
    assert detail["ratio_flag"] == "high" and detail["los_days"] == 7
    assert await list_ids(any_api, "discharged") == ["C1"]
    assert await march_cases(any_api) == (1, 1)
