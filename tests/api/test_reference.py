"""POST /v1/drg-catalogues, the current-group lookup and PUT /v1/alert-thresholds."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from tests.api.conftest import Api

TODAY = datetime.now(UTC).date()
IN_FORCE = (TODAY - timedelta(days=30)).isoformat()

PAYLOAD: dict[str, Any] = {
    "name": "CHS-DRG test catalogue",
    "effective_from": IN_FORCE,
    "base_rates": {"employee": "12252.70", "resident": "9649.24"},
    "groups": [
        {
            "drg_code": "FM15",
            "name": "Coronary stent, no MCC",
            "weight": "3.2973",
            "avg_los_days": "7.5",
        },
        {
            "drg_code": "GB21",
            "name": "Appendectomy",
            "weight": "1.1000",
            "standard_cost": "15000.00",
        },
        {"drg_code": "HALF", "name": "Rounding probe", "weight": "1.0005"},
    ],
}


def cents(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


async def version(api: Api) -> int:
    return int(await api.scalar("SELECT version FROM reference_version WHERE id = 1"))


async def test_catalogue_is_created_and_groups_priced_per_scheme(api: Api) -> None:
    assert await version(api) == 0
    response = await api.client.post("/v1/drg-catalogues", json=PAYLOAD)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == PAYLOAD["name"]
    assert created["effective_from"] == IN_FORCE
    assert created["group_count"] == 3
    assert created["base_rates"] == {"employee": "12252.70", "resident": "9649.24"}
    assert await version(api) == 1
    assert await api.scalar("SELECT count(*) FROM drg_groups") == 3

    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert group["drg_code"] == "FM15"
    assert group["name"] == "Coronary stent, no MCC"
    assert group["weight"] == "3.2973"
    assert group["avg_los_days"] == "7.5"
    assert group["standard_cost"] is None
    assert group["catalogue_id"] == created["catalogue_id"]
    weight = Decimal("3.2973")
    assert group["standard_costs"] == {
        "employee": cents(weight * Decimal("12252.70")),  # 40400.827710
        "resident": cents(weight * Decimal("9649.24")),  # 31816.439052
    }
    assert group["standard_costs"] == {"employee": "40400.83", "resident": "31816.44"}


async def test_standard_cost_override_and_half_up_rounding(api: Api) -> None:
    assert (await api.client.post("/v1/drg-catalogues", json=PAYLOAD)).status_code == 201

    override = (await api.client.get("/v1/drg-catalogues/current/groups/GB21")).json()
    assert override["standard_cost"] == "15000.00"
    assert override["standard_costs"] == {"employee": "15000.00", "resident": "15000.00"}

    # 1.0005 x 12252.70 = 12258.82635 ; 1.0005 x 9649.24 = 9654.06462
    probe = (await api.client.get("/v1/drg-catalogues/current/groups/HALF")).json()
    assert probe["standard_costs"] == {"employee": "12258.83", "resident": "9654.06"}


async def test_half_cent_rounds_up(api: Api) -> None:
    payload = {
        "name": "half",
        "effective_from": IN_FORCE,
        "base_rates": {"employee": "1010.00"},
        "groups": [
            {"drg_code": "X1", "name": "x", "weight": "1.0005"},
            {"drg_code": "X2", "name": "x", "weight": "1.0025"},
        ],
    }
    assert (await api.client.post("/v1/drg-catalogues", json=payload)).status_code == 201
    # 1010.505 and 1012.525: half-up, not banker's rounding (1010.50 and 1012.52)
    x1 = (await api.client.get("/v1/drg-catalogues/current/groups/X1")).json()
    x2 = (await api.client.get("/v1/drg-catalogues/current/groups/X2")).json()
    assert x1["standard_costs"] == {"employee": "1010.51"}
    assert x2["standard_costs"] == {"employee": "1012.53"}


async def test_newest_catalogue_in_force_wins_and_future_one_waits(api: Api) -> None:
    assert (await api.client.post("/v1/drg-catalogues", json=PAYLOAD)).status_code == 201
    newer = copy.deepcopy(PAYLOAD)
    newer["name"] = "newer"
    newer["effective_from"] = (TODAY - timedelta(days=1)).isoformat()
    newer["groups"][0]["weight"] = "2.0000"
    future = copy.deepcopy(PAYLOAD)
    future["name"] = "future"
    future["effective_from"] = (TODAY + timedelta(days=30)).isoformat()
    future["groups"][0]["weight"] = "9.0000"
    assert (await api.client.post("/v1/drg-catalogues", json=newer)).status_code == 201
    assert (await api.client.post("/v1/drg-catalogues", json=future)).status_code == 201
    assert await version(api) == 3

    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert group["catalogue_name"] == "newer"
    assert group["weight"] == "2.0000"
    assert group["standard_costs"]["employee"] == "24505.40"
    later = (
        await api.client.get(
            "/v1/drg-catalogues/current/groups/FM15", params={"on": future["effective_from"]}
        )
    ).json()
    assert later["catalogue_name"] == "future"


async def test_unknown_code_is_404(api: Api) -> None:
    assert (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).status_code == 404
    assert (await api.client.post("/v1/drg-catalogues", json=PAYLOAD)).status_code == 201
    response = await api.client.get("/v1/drg-catalogues/current/groups/ZZ99")
    assert response.status_code == 404, response.text
    assert "ZZ99" in response.json()["detail"]


def broken(change: Any) -> dict[str, Any]:
    payload = copy.deepcopy(PAYLOAD)
    change(payload)
    return payload


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (broken(lambda p: p["groups"].append(dict(p["groups"][0]))), "groups"),
        (broken(lambda p: p["groups"][1].update(weight="-1.5")), "groups.1.weight"),
        (broken(lambda p: p["groups"][0].update(weight=3.2973)), "groups.0.weight"),
        (broken(lambda p: p["groups"][0].update(weight="0")), "groups.0.weight"),
        (broken(lambda p: p["groups"][0].update(standard_cost="-5.00")), "groups.0.standard_cost"),
        (broken(lambda p: p["base_rates"].update(employee=12252.7)), "base_rates.employee"),
        (broken(lambda p: p.update(effective_from="soon")), "effective_from"),
        (broken(lambda p: p.update(groups=[])), "groups"),
        (broken(lambda p: p.pop("name")), "name"),
        (broken(lambda p: p["groups"][0].update(colour="red")), "groups.0.colour"),
    ],
)
async def test_invalid_catalogue_is_422_naming_the_field(
    api: Api, payload: dict[str, Any], field: str
) -> None:
    response = await api.client.post("/v1/drg-catalogues", json=payload)

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert field in {e["field"] for e in errors}, errors
    assert all(e["reason"] for e in errors)
    # nothing stored, nothing bumped
    assert await api.scalar("SELECT count(*) FROM drg_catalogues") == 0
    assert await api.scalar("SELECT count(*) FROM drg_groups") == 0
    assert await version(api) == 0


async def test_duplicate_code_reason_names_the_code(api: Api) -> None:
    payload = broken(lambda p: p["groups"].append(dict(p["groups"][0])))
    errors = (await api.client.post("/v1/drg-catalogues", json=payload)).json()["errors"]
    assert any("FM15" in e["reason"] for e in errors)


async def test_thresholds_out_of_order_are_422(api: Api) -> None:
    response = await api.client.put(
        "/v1/alert-thresholds", json={"blue": "0.97", "yellow": "0.95", "red": "1.00"}
    )
    assert response.status_code == 422, response.text
    assert any("blue" in e["reason"] for e in response.json()["errors"])
    assert await api.scalar("SELECT count(*) FROM alert_thresholds") == 0
    assert await version(api) == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"blue": 0.9, "yellow": "0.95", "red": "1.00"}, "blue"),
        ({"blue": "0", "yellow": "0.95", "red": "1.00"}, "blue"),
        ({"blue": "0.90", "yellow": "0.95"}, "red"),
        ({"blue": "0.90", "yellow": "0.95", "red": "1.00", "green": "0.5"}, "green"),
    ],
)
async def test_invalid_thresholds_are_422_naming_the_field(
    api: Api, payload: dict[str, Any], field: str
) -> None:
    response = await api.client.put("/v1/alert-thresholds", json=payload)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert await version(api) == 0


async def test_valid_thresholds_are_stored_and_bump_the_version(api: Api) -> None:
    body = {
        "hospital_id": "H001",
        "drg_code": "FM15",
        "blue": "0.85",
        "yellow": "0.92",
        "red": "1.05",
    }
    response = await api.client.put("/v1/alert-thresholds", json=body)

    assert response.status_code == 200, response.text
    echoed = response.json()
    assert {k: echoed[k] for k in ("hospital_id", "drg_code")} == {
        "hospital_id": "H001",
        "drg_code": "FM15",
    }
    assert Decimal(echoed["blue"]) == Decimal("0.85")
    assert await version(api) == 1
    rows = await api.rows("SELECT hospital_id, drg_code, blue, yellow, red FROM alert_thresholds")
    assert [tuple(r) for r in rows] == [
        ("H001", "FM15", Decimal("0.8500"), Decimal("0.9200"), Decimal("1.0500"))
    ]

    # setting them again replaces the row and bumps again; defaults go to '*'
    body["red"] = "1.10"
    assert (await api.client.put("/v1/alert-thresholds", json=body)).status_code == 200
    default = {"blue": "0.90", "yellow": "0.95", "red": "1.00"}
    assert (await api.client.put("/v1/alert-thresholds", json=default)).status_code == 200
    assert await version(api) == 3
    rows = await api.rows(
        "SELECT hospital_id, drg_code, red FROM alert_thresholds ORDER BY hospital_id"
    )
    assert [tuple(r) for r in rows] == [
        ("*", "*", Decimal("1.0000")),
        ("H001", "FM15", Decimal("1.1000")),
    ]
