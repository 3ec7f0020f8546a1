"""The explanation on the case and on the alert detail, on PostgreSQL and SQLite: cases
priced by the real cost core and written by the worker's projector.

AA11 has ten discharged cases in the hospital within the last 365 days: its typical mix
is theirs (drug 60%, lab 20%, consumable 20%). BB22 has nine, and around them cases that
must not count (discharged a day too early, open, of another hospital, another DRG): no
typical mix.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from services.alerting.projector import write_batch
from services.api.cases.explanation import TYPICAL_MIN_CASES, TypicalMixes
from services.casecost.pricing import Catalogue, DrgGroup, PriceBook
from tests.api.conftest import Api
from tests.api.corefactory import CaseBuilder
from tests.api.test_indicators import database_url, key_for, service, set_today

__all__ = ["database_url", "service"]  # the fixtures, on both databases

CATALOGUE: dict[str, Any] = {
    "name": "explanation test catalogue",
    "effective_from": "2025-01-01",
    "base_rates": {"employee": "10000.00", "resident": "8000.00"},
    "groups": [
        {"drg_code": "AA11", "name": "Pneumonia", "weight": "1", "avg_los_days": "5"},
        {"drg_code": "BB22", "name": "Hip replacement", "weight": "2.5", "avg_los_days": "10"},
    ],
}
BOOK = PriceBook(
    version=1,
    catalogues=(
        Catalogue(
            catalogue_id=1,
            name="explanation test catalogue",
            effective_from=date(2025, 1, 1),
            base_rates={"employee": Decimal("10000.00"), "resident": Decimal("8000.00")},
            groups={
                "AA11": DrgGroup("AA11", "Pneumonia", Decimal("1"), Decimal("5")),
                "BB22": DrgGroup("BB22", "Hip replacement", Decimal("2.5"), Decimal("10")),
            },
        ),
    ),
)
TODAY = "2026-11-30T12:00:00+08:00"


def discharged(
    case_id: str,
    drg: str,
    charges: list[tuple[str, str]],
    discharged_at: str,
    *,
    hospital: str = "H001",
    department: str = "CARD",
) -> CaseBuilder:
    """A stay of a day or two ending at `discharged_at` (local), with (amount, category)
    charges on its admission day."""
    day = discharged_at[:10]
    case = CaseBuilder(hospital, case_id, price_book=BOOK).admit(
        department=department, drg_code=drg, at=f"{day}T00:00:00+08:00"
    )
    for number, (amount, category) in enumerate(charges):
        case.cost(
            amount,
            category=category,
            item_code=f"{category}-{number}",
            department=department,
            at=f"{day}T00:01:00+08:00",
        )
    return case.discharge(f"{discharged_at}+08:00")


def hospital_cases() -> list[CaseBuilder]:
    typical = [("3000", "drug"), ("1000", "lab"), ("1000", "consumable")]
    heavy = [("50000", "consumable")]  # would change every share if it counted
    cases = [
        discharged(f"A{n}", "AA11", typical, f"2026-{(n % 11) + 1:02d}-10T10:00:00")
        for n in range(TYPICAL_MIN_CASES - 1)
    ]
    cases += [
        # the first local day of the window (30 November 2025 in UTC)
        discharged("A9", "AA11", typical, "2025-12-01T00:30:00"),
        # the local day before it
        discharged("A-old", "AA11", heavy, "2025-11-30T23:30:00"),
        discharged("A-other", "AA11", heavy, "2026-06-10T10:00:00", hospital="H002"),
        discharged("X1", "CC33", heavy, "2026-06-10T10:00:00"),
    ]
    cases += [
        discharged(f"B{n}", "BB22", typical, f"2026-{n + 1:02d}-12T10:00:00")
        for n in range(TYPICAL_MIN_CASES - 1)
    ]
    cases.append(discharged("B-old", "BB22", typical, "2025-11-30T23:30:00"))
    cases.append(discharged("B-other", "BB22", typical, "2026-06-12T10:00:00", hospital="H002"))
    # the AA11 case explained: red on 27 November, when 3 stents break its trend
    open_case = (
        CaseBuilder("H001", "OPEN-AA", price_book=BOOK)
        .admit(department="CARD", drg_code="AA11", at="2026-11-25T08:00:00+08:00")
        .cost("1000", category="drug", item_code="D1", at="2026-11-25T09:00:00+08:00")
        .cost(
            "1000",
            category="lab",
            item_code="L1",
            at="2026-11-26T09:00:00+08:00",
            ordered_by="D7",
        )
        .cost(
            "9000",
            category="consumable",
            item_code="CS",
            item_name="冠脉支架",
            quantity="3",
            at="2026-11-27T09:00:00+08:00",
            ordered_by="D1024",
        )
    )
    cases.append(open_case)
    # the BB22 case explained: open, one implant most of its cost
    cases.append(
        CaseBuilder("H001", "OPEN-BB", price_book=BOOK)
        .admit(department="SURG", drg_code="BB22", at="2026-11-28T08:00:00+08:00")
        .cost(
            "2000",
            category="drug",
            item_code="D2",
            department="SURG",
            at="2026-11-28T09:00:00+08:00",
        )
        .cost(
            "8000",
            category="consumable",
            item_code="HIP",
            item_name="hip prosthesis",
            department="SURG",
            at="2026-11-28T10:00:00+08:00",
            ordered_by="S3",
        )
    )
    return cases


async def seed(api: Api, cases: list[CaseBuilder]) -> None:
    response = await api.client.post("/v1/drg-catalogues", json=CATALOGUE)
    assert response.status_code == 201, response.text
    await write_batch(api.engine, api.sessions, [c.to_dict() for c in cases], [])
    set_today(api, TODAY)


EXPLAINED_AA11 = {
    "typical_source": "hospital",
    "typical_cases": 10,
    "categories": [
        {
            "category": "consumable",
            "amount": "9000.00",
            "share": "0.8182",
            "typical_share": "0.2000",
            "difference": "0.6182",
            "excess": "6800.00",
        },
        {
            "category": "drug",
            "amount": "1000.00",
            "share": "0.0909",
            "typical_share": "0.6000",
            "difference": "-0.5091",
            "excess": "-5600.00",
        },
        {
            "category": "lab",
            "amount": "1000.00",
            "share": "0.0909",
            "typical_share": "0.2000",
            "difference": "-0.1091",
            "excess": "-1200.00",
        },
    ],
    "top_items": [
        {
            "item_code": "CS",
            "item_name": "冠脉支架",
            "category": "consumable",
            "quantity": "3",
            "amount": "9000.00",
            "share": "0.8182",
        },
        {
            "item_code": "D1",
            "item_name": "item D1",
            "category": "drug",
            "quantity": "1",
            "amount": "1000.00",
            "share": "0.0909",
        },
        {
            "item_code": "L1",
            "item_name": "item L1",
            "category": "lab",
            "quantity": "1",
            "amount": "1000.00",
            "share": "0.0909",
        },
    ],
    "top_doctors": [
        {"ordered_by": "D1024", "amount": "9000.00", "share": "0.8182"},
        {"ordered_by": "D7", "amount": "1000.00", "share": "0.0909"},
    ],
    "accelerated": {"day": "2026-11-27", "amount": "9000.00", "baseline": "1000.00"},
    "driver": {"kind": "category", "category": "consumable", "item_code": None, "day": None},
    # no monitoring rule found anything on it (tests/api/test_rule_alerts.py: some did)
    "rule_findings": [],
    "rule_findings_total": 0,
    "summary_zh": "耗材占费用 82%（AA11 本院同组典型 20%）；主要为冠脉支架 ×3（9000.00 元）"
    "；开单最多的医生 D1024",
    "summary_en": "consumables are 82% of cost against 20% typical for AA11; "
    "mostly 3 x 冠脉支架 (9000.00); top ordering doctor D1024",
}


async def test_a_case_is_explained_against_its_drgs_typical_mix_in_the_hospital(
    service: Api,
) -> None:
    await seed(service, hospital_cases())

    response = await service.client.get("/v1/hospitals/H001/cases/OPEN-AA")

    assert response.status_code == 200, response.text
    assert response.json()["explanation"] == EXPLAINED_AA11


async def test_a_drg_with_too_few_discharged_cases_has_no_typical_mix(service: Api) -> None:
    await seed(service, hospital_cases())

    response = await service.client.get("/v1/hospitals/H001/cases/OPEN-BB")

    assert response.status_code == 200, response.text
    explanation = response.json()["explanation"]
    assert explanation["typical_source"] is None
    assert explanation["typical_cases"] is None
    assert explanation["categories"] == [
        {
            "category": "consumable",
            "amount": "8000.00",
            "share": "0.8000",
            "typical_share": None,
            "difference": None,
            "excess": None,
        },
        {
            "category": "drug",
            "amount": "2000.00",
            "share": "0.2000",
            "typical_share": None,
            "difference": None,
            "excess": None,
        },
    ]
    assert explanation["driver"] == {
        "kind": "item",
        "category": "consumable",
        "item_code": "HIP",
        "day": None,
    }
    assert explanation["accelerated"] is None
    assert explanation["summary_en"] == (
        "the costliest item is 1 x hip prosthesis, 8000.00, 80% of cost; top ordering doctor S3"
    )
    assert explanation["summary_zh"] == (
        "最大单项为hip prosthesis ×1，8000.00 元，占费用 80%；开单最多的医生 S3"
    )


async def test_the_tenth_discharged_case_makes_the_typical_mix(service: Api) -> None:
    cases = hospital_cases()
    cases.append(discharged("B9", "BB22", [("1000", "drug")], "2026-11-29T10:00:00"))
    await seed(service, cases)

    response = await service.client.get("/v1/hospitals/H001/cases/OPEN-BB")

    explanation = response.json()["explanation"]
    assert (explanation["typical_source"], explanation["typical_cases"]) == ("hospital", 10)
    # 9 x (3000, 1000, 1000) + 1000 of drug: 46000 in all
    shares = {row["category"]: row["typical_share"] for row in explanation["categories"]}
    assert shares == {"drug": "0.6087", "consumable": "0.1957", "lab": "0.1957"}


async def test_the_typical_mix_is_kept_for_five_minutes(service: Api) -> None:
    clock = [1000.0]
    service.app.state.typical_mixes = TypicalMixes(clock=lambda: clock[0])
    await seed(service, hospital_cases())

    async def source() -> Any:
        case = await service.client.get("/v1/hospitals/H001/cases/OPEN-BB")
        return case.json()["explanation"]["typical_source"]

    assert await source() is None
    tenth = discharged("B9", "BB22", [("1000", "drug")], "2026-11-29T10:00:00")
    await write_batch(service.engine, service.sessions, [tenth.to_dict()], [])
    clock[0] += 299
    assert await source() is None
    clock[0] += 1
    assert await source() == "hospital"


async def test_the_alert_detail_explains_its_case_as_it_stands_now(service: Api) -> None:
    cases = hospital_cases()
    await seed(service, cases)
    [alert] = await service.rows(
        "SELECT alert_id FROM alerts WHERE case_id = 'OPEN-AA' AND level = 'red'"
    )

    response = await service.client.get(f"/v1/alerts/{alert.alert_id}")

    assert response.status_code == 200, response.text
    assert response.json()["explanation"] == EXPLAINED_AA11
    # later charges change the explanation the alert is served with
    later = cases[-2].cost("40000", category="drug", item_code="D9", at="2026-11-29T09:00:00+08:00")
    await write_batch(service.engine, service.sessions, [later.to_dict()], [])
    explanation = (await service.client.get(f"/v1/alerts/{alert.alert_id}")).json()["explanation"]
    assert explanation["driver"]["category"] == "drug"
    assert explanation["summary_en"].startswith("drugs are 80% of cost against 60% typical")


async def test_the_explanation_keeps_the_cases_scope(service: Api) -> None:
    cases = hospital_cases()
    await seed(service, cases)
    [alert] = await service.rows(
        "SELECT alert_id FROM alerts WHERE case_id = 'OPEN-AA' AND level = 'red'"
    )
    card = await key_for(service, "card head", "department_head", ["H001"], ["CARD"])

    seen = await service.client.get(f"/v1/alerts/{alert.alert_id}", headers=card)
    assert seen.json()["explanation"] == EXPLAINED_AA11

    # the patient moves to surgery: the CARD alert stays the CARD head's, the case does not
    moved = cases[-2].transfer("SURG", at="2026-11-29T08:00:00+08:00")
    await write_batch(service.engine, service.sessions, [moved.to_dict()], [])
    alert_now = await service.client.get(f"/v1/alerts/{alert.alert_id}", headers=card)
    assert alert_now.status_code == 200
    assert alert_now.json()["explanation"] is None
    case_now = await service.client.get("/v1/hospitals/H001/cases/OPEN-AA", headers=card)
    assert case_now.status_code == 404
    surgery = await key_for(service, "surgery head", "department_head", ["H001"], ["SURG"])
    assert (await service.client.get("/v1/hospitals/H001/cases/OPEN-AA", headers=surgery)).json()[
        "explanation"
    ]["typical_source"] == "hospital"
