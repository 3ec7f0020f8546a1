"""Indicators, hospitals, departments, targets and daily alert counts, over cases priced
by the real cost core and written by the worker's projector, on PostgreSQL and SQLite.

The November 2026 cases are the table of tests/unit/test_indicators.py (and of the
README's worked example); around them: cases the indicators must leave out (open,
unpriced, discharged on 1 December local time, in the period before the previous one,
of another hospital) and the previous period (October 2 to 31).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.access import service as access_service
from services.alerting.projector import write_batch
from services.api.deps import get_now
from services.api.settings import ApiSettings
from services.casecost.pricing import Catalogue, DrgGroup, PriceBook
from services.storage import schema
from services.storage.engine import make_engine
from services.storage.models import Base
from tests.api.conftest import Api, running_api
from tests.api.corefactory import CaseBuilder

CATALOGUE: dict[str, Any] = {
    "name": "indicators test catalogue",
    "effective_from": "2026-01-01",
    "base_rates": {"employee": "10000.00", "resident": "8000.00"},
    "groups": [
        {
            "drg_code": "AA11",
            "name": "Pneumonia",
            "weight": "1",
            "avg_los_days": "5",
            "mean_cost": "9500.00",
        },
        {
            "drg_code": "BB22",
            "name": "Hip replacement",
            "weight": "2.5",
            "avg_los_days": "10",
            "mean_cost": "30000.00",
        },
        {"drg_code": "CC33", "name": "Day chemotherapy", "weight": "0.5", "standard_cost": "4000"},
    ],
}
BOOK = PriceBook(
    version=1,
    catalogues=(
        Catalogue(
            catalogue_id=1,
            name="indicators test catalogue",
            effective_from=date(2026, 1, 1),
            base_rates={"employee": Decimal("10000.00"), "resident": Decimal("8000.00")},
            groups={
                "AA11": DrgGroup("AA11", "Pneumonia", Decimal("1"), Decimal("5")),
                "BB22": DrgGroup("BB22", "Hip replacement", Decimal("2.5"), Decimal("10")),
                "CC33": DrgGroup(
                    "CC33", "Day chemotherapy", Decimal("0.5"), None, Decimal("4000.00")
                ),
            },
        ),
    ),
)
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


def stay(
    case_id: str,
    department: str,
    drg: str | None,
    admitted: str,
    charges: list[tuple[str, str, str]],
    discharged: str | None,
    *,
    scheme: str = "employee",
    hospital: str = "H001",
) -> CaseBuilder:
    """A case admitted at `admitted` (local +08:00 time), with (amount, category, at)
    charges (a negative amount is a credit), discharged at `discharged` if given."""
    case = CaseBuilder(hospital, case_id, price_book=BOOK).admit(
        department=department, drg_code=drg, scheme=scheme, at=f"{admitted}+08:00"
    )
    for number, (amount, category, at) in enumerate(charges):
        credit = amount.startswith("-")
        case.cost(
            amount.lstrip("-"),
            category=category,
            # a credit reverses the line charged just before it
            item_code=f"{category}-{number - 1 if credit else number}",
            kind="credit" if credit else "charge",
            department=department,
            at=f"{at}+08:00",
        )
    if discharged:
        case.discharge(f"{discharged}+08:00")
    return case


def hospital_cases() -> list[CaseBuilder]:
    return [
        # the six cases of November
        stay(
            "C1",
            "CARD",
            "AA11",
            "2026-10-28T08:00:00",
            [("6000", "drug", "2026-10-28T09:00:00"), ("2000", "lab", "2026-10-29T09:00:00")],
            "2026-11-01T00:10:00",  # 31 October in UTC: the local day counts
        ),
        stay(
            "C2",
            "CARD",
            "AA11",
            "2026-11-02T08:00:00",
            [
                ("5000", "drug", "2026-11-02T09:00:00"),
                ("3000", "consumable", "2026-11-03T23:30:00"),  # yellow on 3 November
                ("2000", "bed", "2026-11-04T00:30:00"),  # red on 4 November (3rd in UTC)
            ],
            "2026-11-09T10:00:00",
            scheme="resident",
        ),
        stay(
            "C3",
            "CARD",
            "BB22",
            "2026-11-03T08:00:00",
            [
                ("40000", "consumable", "2026-11-03T10:00:00"),  # red on 3 November
                ("8000", "drug", "2026-11-04T10:00:00"),
                ("4000", "procedure", "2026-11-05T10:00:00"),
            ],
            "2026-11-15T10:00:00",
        ),
        stay(
            "C4",
            "SURG",
            "BB22",
            "2026-11-09T08:00:00",
            [
                ("15000", "consumable", "2026-11-10T10:00:00"),
                ("3000", "procedure", "2026-11-10T11:00:00"),
            ],
            "2026-11-18T10:00:00",
        ),
        stay(
            "C5",
            "SURG",
            "CC33",
            "2026-11-20T09:00:00",
            [("1200", "drug", "2026-11-20T10:00:00")],
            "2026-11-20T15:00:00",
            scheme="resident",
        ),
        stay(
            "C6",
            "SURG",
            "CC33",
            "2026-11-21T09:00:00",
            [("3000", "drug", "2026-11-21T10:00:00"), ("400", "lab", "2026-11-21T11:00:00")],
            "2026-11-22T10:00:00",
        ),
        # left out of November's indicators
        stay(
            "C7",  # open; yellow, none, yellow again on 20 November
            "CARD",
            "AA11",
            "2026-11-20T08:00:00",
            [
                ("9500", "drug", "2026-11-20T10:00:00"),
                ("-1000", "drug", "2026-11-20T11:00:00"),
                ("1000", "drug", "2026-11-20T12:00:00"),
            ],
            None,
        ),
        stay(
            "C8",  # no DRG: unpriced
            "CARD",
            None,
            "2026-11-05T08:00:00",
            [("3000", "drug", "2026-11-05T10:00:00")],
            "2026-11-10T10:00:00",
        ),
        stay(
            "C9",  # discharged on 1 December local time (30 November in UTC)
            "CARD",
            "AA11",
            "2026-11-28T08:00:00",
            [("1000", "drug", "2026-11-28T10:00:00")],
            "2026-12-01T00:30:00",
        ),
        stay(
            "C10",  # open in SURG; blue on 25 November
            "SURG",
            "BB22",
            "2026-11-24T08:00:00",
            [("23000", "consumable", "2026-11-25T10:00:00")],
            None,
        ),
        # the previous period (2 to 31 October), and a case the day before it
        stay(
            "P1",
            "CARD",
            "AA11",
            "2026-10-05T08:00:00",
            [("9000", "drug", "2026-10-06T10:00:00")],
            "2026-10-10T10:00:00",
        ),
        stay(
            "P2",
            "SURG",
            "BB22",
            "2026-10-10T08:00:00",
            [("21000", "consumable", "2026-10-11T10:00:00")],
            "2026-10-20T10:00:00",
        ),
        stay(
            "P3",
            "SURG",
            "BB22",
            "2026-09-25T08:00:00",
            [("100000", "consumable", "2026-09-26T10:00:00")],
            "2026-10-01T12:00:00",
        ),
        stay(
            "C1",
            "CARD",
            "AA11",
            "2026-11-02T08:00:00",
            [("5000", "drug", "2026-11-02T09:00:00")],
            "2026-11-05T10:00:00",
            hospital="H002",
        ),
    ]


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}"


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app with its lifespan running, on an emptied PostgreSQL or a new SQLite file."""
    if database_url.startswith("postgresql"):
        await schema.upgrade(database_url)
        engine = make_engine(database_url)
        # the one-row tables a database keeps from its migrations stay
        kept = {"reference_version", "rule_generation", "ingest_seal"}
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name not in kept)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            await connection.execute(text("UPDATE reference_version SET version = 0"))
            await connection.execute(text("UPDATE rule_generation SET generation = 0"))
        await engine.dispose()
    settings = ApiSettings(
        database_url=database_url, topic_prefix="drgwatch-test", data_dir=tmp_path
    )
    async with running_api(settings) as running:
        yield running


def set_today(api: Api, moment: str) -> None:
    """The service's clock (and so its local day)."""
    fixed = datetime.fromisoformat(moment)

    async def now() -> datetime:
        return fixed.astimezone(UTC)

    api.app.dependency_overrides[get_now] = now


@pytest.fixture
async def seeded(service: Api) -> Api:
    response = await service.client.post("/v1/drg-catalogues", json=CATALOGUE)
    assert response.status_code == 201, response.text
    await write_batch(service.engine, service.sessions, [c.to_dict() for c in hospital_cases()], [])
    set_today(service, "2026-11-30T12:00:00+08:00")
    return service


async def key_for(
    api: Api, name: str, role: str, hospitals: list[str], departments: list[str]
) -> dict[str, str]:
    async with api.sessions() as db_session:
        _, key = await access_service.create_identity(
            db_session=db_session,
            name=name,
            role=role,
            hospitals=hospitals,
            departments=departments,
        )
        await db_session.commit()
    return {"Authorization": f"Bearer {key}"}


CARD = {
    "cases": 3,
    "total_weight": "4.5000",
    "cmi": "1.5000",
    "total_cost": "70000.00",
    "total_standard": "43000.00",
    "budget_execution": "1.6279",
    "surplus": "-27000.00",
    "cost_consumption_index": "1.3600",
    # against the regions' means: AA11 18000 / (2 x 9500), BB22 52000 / 30000:
    # (2 x 0.9474 + 1 x 1.7333) / 3
    "regional_cost_consumption_index": "1.2094",
    "time_consumption_index": "1.1333",
    "mean_los_days": "7.67",
    "drug_share": "0.2714",
    "consumables_share": "0.6143",
    "cost_by_category_share": {
        "bed": "0.0286",
        "consumable": "0.6143",
        "drug": "0.2714",
        "lab": "0.0286",
        "procedure": "0.0571",
    },
    "high_ratio_cases": 1,
    "high_ratio_share": "0.3333",
    "low_ratio_cases": 0,
    "low_ratio_share": "0.0000",
    "cost_per_case": "23333.33",
    "previous_cost_per_case": "9000.00",
    "cost_per_case_change": "1.5926",
}
SURG = {
    "cases": 3,
    "total_weight": "3.5000",
    "cmi": "1.1667",
    "total_cost": "22600.00",
    "total_standard": "33000.00",
    "budget_execution": "0.6848",
    "surplus": "10400.00",
    "cost_consumption_index": "0.6233",
    "regional_cost_consumption_index": "0.6000",
    "time_consumption_index": "0.9000",
    "mean_los_days": "3.67",
    "drug_share": "0.1858",
    "consumables_share": "0.6637",
    "cost_by_category_share": {
        "consumable": "0.6637",
        "drug": "0.1858",
        "lab": "0.0177",
        "procedure": "0.1327",
    },
    "high_ratio_cases": 0,
    "high_ratio_share": "0.0000",
    "low_ratio_cases": 1,
    "low_ratio_share": "0.3333",
    "cost_per_case": "7533.33",
    "previous_cost_per_case": "21000.00",
    "cost_per_case_change": "-0.6413",
}
OVERALL = {
    "cases": 6,
    "total_weight": "8.0000",
    "cmi": "1.3333",
    "total_cost": "92600.00",
    "total_standard": "76000.00",
    "budget_execution": "1.2184",
    "surplus": "-16600.00",
    "cost_consumption_index": "0.9917",
    "regional_cost_consumption_index": "1.0570",
    "time_consumption_index": "1.0750",
    "mean_los_days": "5.67",
    "drug_share": "0.2505",
    "consumables_share": "0.6263",
    "cost_by_category_share": {
        "bed": "0.0216",
        "consumable": "0.6263",
        "drug": "0.2505",
        "lab": "0.0259",
        "procedure": "0.0756",
    },
    "high_ratio_cases": 1,
    "high_ratio_share": "0.1667",
    "low_ratio_cases": 1,
    "low_ratio_share": "0.1667",
    "cost_per_case": "15433.33",
    "previous_cost_per_case": "15000.00",
    "cost_per_case_change": "0.0289",
}


async def test_a_month_overall_and_by_department(seeded: Api) -> None:
    response = await seeded.client.get(
        "/v1/hospitals/H001/indicators", params=NOVEMBER | {"group_by": "department"}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["hospital_id"], body["from"], body["to"]) == ("H001", "2026-11-01", "2026-11-30")
    assert body["overall"] == OVERALL
    assert body["groups"] == [
        {"key": "CARD", "name": None, **CARD},
        {"key": "SURG", "name": None, **SURG},
    ]


async def test_by_drg_and_filtered(seeded: Api) -> None:
    by_drg = (
        await seeded.client.get(
            "/v1/hospitals/H001/indicators", params=NOVEMBER | {"group_by": "drg"}
        )
    ).json()
    assert [(g["key"], g["name"], g["cases"]) for g in by_drg["groups"]] == [
        ("AA11", "Pneumonia", 2),
        ("BB22", "Hip replacement", 2),
        ("CC33", "Day chemotherapy", 2),
    ]
    bb22 = by_drg["groups"][1]
    # 70000 / 50000; stays (12 + 9) / (10 + 10); weights 2 x 2.5
    assert (bb22["cost_consumption_index"], bb22["time_consumption_index"]) == ("1.4000", "1.0500")
    assert (bb22["total_weight"], bb22["cmi"]) == ("5.0000", "2.5000")
    cc33 = by_drg["groups"][2]
    assert (cc33["time_consumption_index"], cc33["mean_los_days"]) == (None, "1.00")
    assert cc33["previous_cost_per_case"] is None and cc33["cost_per_case_change"] is None

    only = (
        await seeded.client.get(
            "/v1/hospitals/H001/indicators",
            params=NOVEMBER | {"drg_code": "BB22", "department": "SURG"},
        )
    ).json()
    assert only["groups"] == []
    assert (only["overall"]["cases"], only["overall"]["total_cost"]) == (1, "18000.00")
    assert only["overall"]["previous_cost_per_case"] == "21000.00"  # P2, not P3


async def test_a_department_head_sees_only_their_departments(seeded: Api) -> None:
    head = await key_for(seeded, "Dr Li", "department_head", ["H001"], ["CARD"])

    body = (
        await seeded.client.get(
            "/v1/hospitals/H001/indicators",
            params=NOVEMBER | {"group_by": "department"},
            headers=head,
        )
    ).json()
    assert body["overall"] == CARD
    assert body["groups"] == [{"key": "CARD", "name": None, **CARD}]
    other = await seeded.client.get(
        "/v1/hospitals/H001/indicators", params=NOVEMBER | {"department": "SURG"}, headers=head
    )
    assert other.status_code == 200 and other.json()["overall"]["cases"] == 0
    elsewhere = await seeded.client.get("/v1/hospitals/H002/indicators", headers=head)
    assert elsewhere.status_code == 404


async def test_an_empty_period_and_the_default_period(seeded: Api) -> None:
    empty = (
        await seeded.client.get(
            "/v1/hospitals/H001/indicators",
            params={"from": "2026-06-01", "to": "2026-06-30", "group_by": "drg"},
        )
    ).json()
    assert empty["groups"] == []
    overall = empty["overall"]
    assert (overall["cases"], overall["high_ratio_cases"], overall["low_ratio_cases"]) == (0, 0, 0)
    assert overall["cost_by_category_share"] == {}
    assert all(
        value is None
        for name, value in overall.items()
        if name not in {"cases", "high_ratio_cases", "low_ratio_cases", "cost_by_category_share"}
    )

    # no dates: the local month so far (30 November at noon in Beijing)
    default = (await seeded.client.get("/v1/hospitals/H001/indicators")).json()
    assert (default["from"], default["to"]) == ("2026-11-01", "2026-11-30")
    assert default["overall"] == OVERALL
    # on 1 December at 00:30 in Beijing (30 November in UTC) the month is December
    set_today(seeded, "2026-12-01T00:30:00+08:00")
    december = (await seeded.client.get("/v1/hospitals/H001/indicators")).json()
    assert (december["from"], december["to"]) == ("2026-12-01", "2026-12-01")
    assert december["overall"]["cases"] == 1  # C9
    assert december["overall"]["previous_cost_per_case"] is None  # nobody left on 30 November


async def test_the_previous_period_has_the_same_length(seeded: Api) -> None:
    # 16 to 30 November (C4, C5, C6) against 1 to 15 November (C1, C2, C3)
    body = (
        await seeded.client.get(
            "/v1/hospitals/H001/indicators", params={"from": "2026-11-16", "to": "2026-11-30"}
        )
    ).json()["overall"]
    assert (body["cost_per_case"], body["previous_cost_per_case"]) == ("7533.33", "23333.33")
    assert body["cost_per_case_change"] == "-0.6771"  # 22600 / 70000 - 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-11-30", "to": "2026-11-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-11-30"}, "to"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
        ({"from": "2026-11-31"}, "from"),
        ({"group_by": "ward"}, "group_by"),
        ({"drg_code": "AA 11"}, "drg_code"),
    ],
)
async def test_a_period_that_cannot_be_is_refused_naming_the_field(
    service: Api, params: dict[str, str], field: str
) -> None:
    response = await service.client.get("/v1/hospitals/H001/indicators", params=params)
    assert response.status_code == 422, response.text
    assert [e["field"].split(".")[-1] for e in response.json()["errors"]] == [field]


async def test_hospitals_in_scope(seeded: Api) -> None:
    assert (await seeded.client.get("/v1/hospitals")).json() == {
        "items": [{"hospital_id": "H001"}, {"hospital_id": "H002"}]
    }
    office = await key_for(seeded, "Office of H002", "insurance_office", ["H002", "H009"], [])
    assert (await seeded.client.get("/v1/hospitals", headers=office)).json() == {
        "items": [{"hospital_id": "H002"}]
    }


async def test_departments_are_the_codes_of_the_cases_with_the_names_given(seeded: Api) -> None:
    listed = await seeded.client.get("/v1/hospitals/H001/departments")
    assert listed.json() == {
        "items": [
            {"code": "CARD", "name_zh": None, "name_en": None},
            {"code": "SURG", "name_zh": None, "name_en": None},
        ]
    }
    named = await seeded.client.put(
        "/v1/hospitals/H001/departments/CARD",
        json={"name_zh": "心内科", "name_en": "Cardiology"},
    )
    assert named.status_code == 200, named.text
    assert named.json() == {"code": "CARD", "name_zh": "心内科", "name_en": "Cardiology"}
    new = await seeded.client.put("/v1/hospitals/H001/departments/ICU", json={"name_en": "ICU"})
    assert new.json() == {"code": "ICU", "name_zh": None, "name_en": "ICU"}
    renamed = await seeded.client.put(
        "/v1/hospitals/H001/departments/CARD", json={"name_zh": "心血管内科"}
    )
    assert renamed.json() == {"code": "CARD", "name_zh": "心血管内科", "name_en": None}
    assert [
        d["code"]
        for d in (await seeded.client.get("/v1/hospitals/H001/departments")).json()["items"]
    ] == ["CARD", "ICU", "SURG"]
    grouped = (
        await seeded.client.get(
            "/v1/hospitals/H001/indicators", params=NOVEMBER | {"group_by": "department"}
        )
    ).json()["groups"]
    assert [(g["key"], g["name"]) for g in grouped] == [("CARD", "心血管内科"), ("SURG", None)]
    # other hospitals keep their own names
    other = (await seeded.client.get("/v1/hospitals/H002/departments")).json()
    assert other == {"items": [{"code": "CARD", "name_zh": None, "name_en": None}]}

    head = await key_for(seeded, "Dr Li", "department_head", ["H001"], ["CARD"])
    mine = (await seeded.client.get("/v1/hospitals/H001/departments", headers=head)).json()
    assert mine == {"items": [{"code": "CARD", "name_zh": "心血管内科", "name_en": None}]}
    refused = await seeded.client.put(
        "/v1/hospitals/H001/departments/CARD", json={"name_zh": "x"}, headers=head
    )
    assert refused.status_code == 403
    bad = await seeded.client.put(
        "/v1/hospitals/H001/departments/CARD", json={"name_zh": "a\u202eb", "code": "X"}
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"name_zh", "code"}


async def test_targets_are_set_adjusted_listed_and_removed(seeded: Api) -> None:
    url = "/v1/hospitals/H001/targets/CARD/2026-11"
    first = await seeded.client.put(
        url, json={"cases": 4, "cost_per_case": "18000.00", "total_cost": "80000.00"}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert {k: body[k] for k in ("hospital_id", "department", "period", "cases")} == {
        "hospital_id": "H001",
        "department": "CARD",
        "period": "2026-11",
        "cases": 4,
    }
    assert (body["cost_per_case"], body["total_cost"]) == ("18000.00", "80000.00")
    assert body["updated_by"] == "local (embedded mode)"
    adjusted = await seeded.client.put(url, json={"cases": 4, "cost_per_case": "20000"})
    assert (adjusted.json()["cost_per_case"], adjusted.json()["total_cost"]) == ("20000.00", None)
    yearly = await seeded.client.put(
        "/v1/hospitals/H001/targets/SURG/2026", json={"cases": 120, "total_cost": "600000.00"}
    )
    assert yearly.status_code == 200, yearly.text

    listed = (await seeded.client.get("/v1/hospitals/H001/targets")).json()["items"]
    assert [(t["department"], t["period"]) for t in listed] == [
        ("CARD", "2026-11"),
        ("SURG", "2026"),
    ]
    by_period = (
        await seeded.client.get("/v1/hospitals/H001/targets", params={"period": "2026"})
    ).json()["items"]
    assert [(t["department"], t["period"]) for t in by_period] == [("SURG", "2026")]
    head = await key_for(seeded, "Dr Li", "department_head", ["H001"], ["CARD"])
    theirs = (await seeded.client.get("/v1/hospitals/H001/targets", headers=head)).json()
    assert [t["department"] for t in theirs["items"]] == ["CARD"]
    assert (await seeded.client.put(url, json={"cases": 1}, headers=head)).status_code == 403

    assert (await seeded.client.delete(url)).status_code == 204
    assert (await seeded.client.delete(url)).status_code == 404
    left = (await seeded.client.get("/v1/hospitals/H001/targets")).json()["items"]
    assert [(t["department"], t["period"]) for t in left] == [("SURG", "2026")]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("CARD/2026-11", {}, "body"),
        ("CARD/2026-11", {"cases": None}, "body"),
        ("CARD/2026-11", {"cases": -1}, "cases"),
        ("CARD/2026-11", {"cases": "4"}, "cases"),
        ("CARD/2026-11", {"total_cost": 80000}, "total_cost"),
        ("CARD/2026-11", {"total_cost": "-1.00"}, "total_cost"),
        ("CARD/2026-11", {"cost_per_case": "1.005"}, "cost_per_case"),
        ("CARD/2026-11", {"cases": 1, "budget": "1"}, "budget"),
        ("CARD/2026-13", {"cases": 1}, "period"),
        ("CARD/26", {"cases": 1}, "period"),
    ],
)
async def test_a_target_that_cannot_be_is_refused_naming_the_field(
    service: Api, path: str, body: dict[str, Any], field: str
) -> None:
    response = await service.client.put(f"/v1/hospitals/H001/targets/{path}", json=body)
    assert response.status_code == 422, response.text
    assert [e["field"].split(".")[-1] for e in response.json()["errors"]] == [field]
    assert await service.scalar("SELECT count(*) FROM department_targets") == 0


async def test_progress_against_targets_with_the_projection(seeded: Api) -> None:
    await seeded.client.put(
        "/v1/hospitals/H001/targets/CARD/2026-11",
        json={"cases": 4, "cost_per_case": "20000.00", "total_cost": "80000.00"},
    )
    await seeded.client.put(
        "/v1/hospitals/H001/targets/SURG/2026", json={"cases": 120, "total_cost": "600000.00"}
    )
    await seeded.client.put(
        "/v1/hospitals/H001/targets/CARD/2026", json={"cases": 1, "total_cost": "1.00"}
    )
    # 20 November in Beijing: 20 of November's 30 days
    set_today(seeded, "2026-11-20T18:00:00+08:00")

    response = await seeded.client.get(
        "/v1/hospitals/H001/targets/progress", params={"period": "2026-11"}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "period": "2026-11",
        "elapsed_share": "0.6667",
        "items": [
            {
                # the month's own target wins over the year's
                "department": "CARD",
                "target": {
                    "period": "2026-11",
                    "cases": 4,
                    "cost_per_case": "20000.00",
                    "total_cost": "80000.00",
                },
                # C1, C2, C3: 8000 + 10000 + 52000
                "actual": {"cases": 3, "cost_per_case": "23333.33", "total_cost": "70000.00"},
                # x 30 / 20
                "projected": {"cases": 5, "cost_per_case": "23333.33", "total_cost": "105000.00"},
                "pace": {"cases": "ahead", "cost_per_case": "over", "total_cost": "over"},
            },
            {
                # a twelfth of the year's: 10 cases, 50000.00
                "department": "SURG",
                "target": {
                    "period": "2026",
                    "cases": 10,
                    "cost_per_case": None,
                    "total_cost": "50000.00",
                },
                # C4, C5 (C6 leaves on the 22nd): 18000 + 1200
                "actual": {"cases": 2, "cost_per_case": "9600.00", "total_cost": "19200.00"},
                "projected": {"cases": 3, "cost_per_case": "9600.00", "total_cost": "28800.00"},
                "pace": {"cases": "behind", "cost_per_case": None, "total_cost": "on_track"},
            },
        ],
    }
    # the default period is the local month; a department head sees their own
    head = await key_for(seeded, "Dr Li", "department_head", ["H001"], ["CARD"])
    theirs = (await seeded.client.get("/v1/hospitals/H001/targets/progress", headers=head)).json()
    assert theirs["period"] == "2026-11"
    assert [item["department"] for item in theirs["items"]] == ["CARD"]
    year = (
        await seeded.client.get(
            "/v1/hospitals/H001/targets/progress", params={"period": "2026", "department": "SURG"}
        )
    ).json()
    # 324 of 365 days; SURG's 2026: P3 (1 October), P2, C4, C5
    assert year["elapsed_share"] == "0.8877"
    assert year["items"][0]["actual"] == {
        "cases": 4,
        "cost_per_case": "35050.00",
        "total_cost": "140200.00",
    }
    ahead = (
        await seeded.client.get("/v1/hospitals/H001/targets/progress", params={"period": "2026-12"})
    ).json()
    assert ahead["elapsed_share"] == "0.0000"
    assert [(i["department"], i["projected"], i["pace"]["cases"]) for i in ahead["items"]] == [
        ("CARD", None, None),
        ("SURG", None, None),
    ]


async def test_daily_alert_counts_by_local_day(seeded: Api) -> None:
    response = await seeded.client.get("/v1/hospitals/H001/alerts/daily")

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 30
    assert (items[0]["day"], items[-1]["day"]) == ("2026-11-01", "2026-11-30")
    busy = {item["day"]: item for item in items if item["red"] or item["yellow"] or item["blue"]}
    assert busy == {
        "2026-11-03": {"day": "2026-11-03", "red": 1, "yellow": 1, "blue": 0},  # C3, C2
        "2026-11-04": {"day": "2026-11-04", "red": 1, "yellow": 0, "blue": 0},  # C2
        "2026-11-20": {"day": "2026-11-20", "red": 0, "yellow": 1, "blue": 0},  # C7, twice
        "2026-11-25": {"day": "2026-11-25", "red": 0, "yellow": 0, "blue": 1},  # C10
    }
    surgery = (
        await seeded.client.get(
            "/v1/hospitals/H001/alerts/daily", params={"days": 7, "department": "SURG"}
        )
    ).json()["items"]
    assert [i["day"] for i in surgery][0] == "2026-11-24"
    assert sum(i["blue"] + i["yellow"] + i["red"] for i in surgery) == 1
    head = await key_for(seeded, "Dr Li", "department_head", ["H001"], ["CARD"])
    theirs = (await seeded.client.get("/v1/hospitals/H001/alerts/daily", headers=head)).json()[
        "items"
    ]
    assert sum(i["blue"] for i in theirs) == 0 and sum(i["red"] for i in theirs) == 2
    for days in ("0", "367", "x"):
        refused = await seeded.client.get("/v1/hospitals/H001/alerts/daily", params={"days": days})
        assert refused.status_code == 422


async def test_the_weight_is_the_groups_on_the_day_of_admission(seeded: Api) -> None:
    # from 10 November CC33 weighs 1.5: C5 and C6 (admitted the 20th and 21st) weigh that,
    # the cases admitted before keep the weights they were priced by
    newer = CATALOGUE | {
        "name": "indicators test catalogue, November",
        "effective_from": "2026-11-10",
        "groups": [
            group | {"weight": "1.5"} if group["drg_code"] == "CC33" else group
            for group in CATALOGUE["groups"]
        ],
    }
    response = await seeded.client.post("/v1/drg-catalogues", json=newer)
    assert response.status_code == 201, response.text

    body = (await seeded.client.get("/v1/hospitals/H001/indicators", params=NOVEMBER)).json()

    # 1 + 1 + 2.5 + 2.5 + 1.5 + 1.5 = 10; 10 / 6
    assert (body["overall"]["total_weight"], body["overall"]["cmi"]) == ("10.0000", "1.6667")
