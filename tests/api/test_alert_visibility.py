"""What a case's timeline and an alert's notes show: each alert only to those who may read
it (as GET /v1/alerts/{id} decides), and notes only as printable text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.access import service as access_service
from services.alerting.projector import write_batch
from tests.api.conftest import Api
from tests.api.corefactory import CaseBuilder

CARDIO_HEAD = ("Dr Wang, cardiology", "department_head", ["H001"], ["CARDIO"])
ORTHO_HEAD = ("Dr Li, orthopaedics", "department_head", ["H001"], ["ORTHO"])
OFFICE = ("Insurance office", "insurance_office", ["H001"], [])
PRIVATE_NOTE = "family asked about the imported stent; see ward round"


@pytest.fixture
async def keys(api: Api) -> AsyncIterator[dict[str, dict[str, str]]]:
    """Headers of each caller, by name."""
    headers = {}
    async with api.sessions() as db_session:
        for name, role, hospitals, departments in (CARDIO_HEAD, ORTHO_HEAD, OFFICE):
            _, key = await access_service.create_identity(
                db_session=db_session,
                name=name,
                role=role,
                hospitals=hospitals,
                departments=departments,
            )
            headers[name] = {"Authorization": f"Bearer {key}"}
        await db_session.commit()
    yield headers


def red_in_cardio() -> CaseBuilder:
    case = CaseBuilder("H001", "C1", clock=datetime.now(UTC) - timedelta(hours=1))
    case.admit(department="CARDIO")
    case.cost("41000.00", item_code="STENT", category="consumable", department="CARDIO")
    return case


def transfer(case: CaseBuilder, department: str) -> None:
    case._apply(case._base("transferred", "2026-03-03T09:00:00+08:00") | {"department": department})


async def write(api: Api, case: CaseBuilder) -> None:
    await write_batch(api.engine, api.sessions, [case.to_dict()], [])


async def test_the_timeline_shows_only_the_alerts_the_caller_may_read(
    api: Api, keys: dict[str, dict[str, str]]
) -> None:
    case = red_in_cardio()
    await write(api, case)
    (cardio_alert,) = [row.alert_id for row in await api.rows("SELECT alert_id FROM alerts")]
    client = api.client
    acked = await client.post(
        f"/v1/alerts/{cardio_alert}/ack", json={"note": PRIVATE_NOTE}, headers=keys[CARDIO_HEAD[0]]
    )
    assert acked.status_code == 200, acked.text
    transfer(case, "ORTHO")
    case.cost(
        "1500.00", kind="credit", item_code="STENT", category="consumable", department="ORTHO"
    )
    await write(api, case)
    alerts = {row.department: row.alert_id for row in await api.rows("SELECT * FROM alerts")}
    assert set(alerts) == {"CARDIO", "ORTHO"}

    ortho = await client.get("/v1/hospitals/H001/cases/C1/timeline", headers=keys[ORTHO_HEAD[0]])
    office = await client.get("/v1/hospitals/H001/cases/C1/timeline", headers=keys[OFFICE[0]])

    assert ortho.status_code == 200, ortho.text
    shown = ortho.json()["entries"]
    assert {entry["alert_id"] for entry in shown} == {alerts["ORTHO"]}
    assert PRIVATE_NOTE not in ortho.text
    # the same answer as the alert itself gives the ORTHO head
    hidden = await client.get(f"/v1/alerts/{cardio_alert}", headers=keys[ORTHO_HEAD[0]])
    assert hidden.status_code == 404
    assert (
        await client.get(f"/v1/alerts/{alerts['ORTHO']}", headers=keys[ORTHO_HEAD[0]])
    ).status_code == 200
    # the insurance office reads every department: the whole story
    assert office.status_code == 200
    kinds = [(entry["kind"], entry["alert_id"]) for entry in office.json()["entries"]]
    assert sorted(kinds) == [
        ("acknowledged", cardio_alert),
        ("alert", cardio_alert),
        ("alert", alerts["ORTHO"]),
    ]
    assert PRIVATE_NOTE in office.text


@pytest.mark.parametrize(
    "note",
    ["a\u0000b", "a\u0007b", "\u001b[31mred", "a\u0085b", "a\u202egnp.exe", "a\u200bb"],
)
async def test_a_note_holding_control_or_invisible_characters_is_refused_naming_it(
    api: Api, keys: dict[str, dict[str, str]], note: str
) -> None:
    case = red_in_cardio()
    await write(api, case)
    (alert_id,) = [row.alert_id for row in await api.rows("SELECT alert_id FROM alerts")]
    for verb, body in [
        ("ack", {"note": note}),
        ("resolve", {"reason": "other", "note": note}),
    ]:
        response = await api.client.post(
            f"/v1/alerts/{alert_id}/{verb}", json=body, headers=keys[CARDIO_HEAD[0]]
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["note"]
    assert await api.scalar("SELECT count(*) FROM alert_actions") == 0


async def test_a_note_may_span_lines_and_any_script(
    api: Api, keys: dict[str, dict[str, str]]
) -> None:
    case = red_in_cardio()
    await write(api, case)
    (alert_id,) = [row.alert_id for row in await api.rows("SELECT alert_id FROM alerts")]
    note = "支架为计划内使用。\r\n\t- 继续观察药费"
    response = await api.client.post(
        f"/v1/alerts/{alert_id}/ack", json={"note": note}, headers=keys[CARDIO_HEAD[0]]
    )
    assert response.status_code == 200, response.text
    assert response.json()["actions"][0]["note"] == note
