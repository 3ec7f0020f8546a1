"""POST /v1/hospitals/{h}/cases/{c}/precheck: where the case lands with proposed items."""

from __future__ import annotations

from decimal import Decimal

from services.alerting.projector import write_batch
from tests.api.conftest import Api
from tests.api.corefactory import FM15_EMPLOYEE, CaseBuilder


async def _case_at(api: Api, amount: str) -> None:
    case = CaseBuilder("H001", "C1").admit().cost(amount, category="drug", item_code="D001")
    await write_batch(api.engine, api.sessions, [case.to_dict()], [])


async def test_an_imported_stent_would_turn_the_case_red(api: Api) -> None:
    await _case_at(api, "30000.00")
    response = await api.client.post(
        "/v1/hospitals/H001/cases/C1/precheck",
        json={"items": [{"item_code": "C-STENT-IMP", "quantity": "1", "unit_price": "12000.00"}]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["added_cost"] == "12000.00"
    assert body["current"] == {"total_cost": "30000.00", "ratio": "0.7426", "level": "none"}
    assert body["projected"]["total_cost"] == "42000.00"
    assert body["projected"]["level"] == "red" and body["crosses_level"] is True
    assert body["standard_cost"] == str(FM15_EMPLOYEE)
    assert body["headroom"] == {"blue": "0.00", "yellow": "0.00", "red": "0.00"}


async def test_headroom_says_how_much_is_left_before_each_level(api: Api) -> None:
    await _case_at(api, "10000.00")
    response = await api.client.post(
        "/v1/hospitals/H001/cases/C1/precheck",
        json={"items": [{"item_code": "C-STENT-DOM", "quantity": "2", "unit_price": "770.00"}]},
    )
    body = response.json()
    projected = Decimal("11540.00")
    assert body["projected"]["total_cost"] == str(projected)
    assert body["crosses_level"] is False
    expected_blue = (Decimal("0.90") * FM15_EMPLOYEE - projected).quantize(Decimal("0.01"))
    assert body["headroom"]["blue"] == str(expected_blue)
    assert Decimal(body["headroom"]["red"]) == (FM15_EMPLOYEE - projected + Decimal("0.01"))


async def test_precheck_refuses_bad_items_and_unknown_cases(api: Api) -> None:
    await _case_at(api, "1.00")
    bad = await api.client.post(
        "/v1/hospitals/H001/cases/C1/precheck",
        json={"items": [{"item_code": "X", "quantity": "1", "unit_price": 5.5}]},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("unit_price")
    missing = await api.client.post(
        "/v1/hospitals/H001/cases/NOPE/precheck",
        json={"items": [{"item_code": "X", "quantity": "1", "unit_price": "5.50"}]},
    )
    assert missing.status_code == 404
