"""POST /v1/fhir: FHIR R4 resources and Bundles through the ingest core, on PostgreSQL
and on SQLite: the ledger rows they write (folded by the real cost core into the case's
total), the FHIR answers, and the dead letters of what was refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.access import service as access_service
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.casecost.apply import apply_event, new_case
from services.casecost.events import parse_event
from services.casecost.state import CaseState
from tests.api.conftest import Api
from tests.api.test_hl7 import store_sample_chargemaster
from tests.unit.case_events import book
from tests.unit.fhir_samples import (
    LOCAL_ITEMS,
    LOINC,
    MAPPING,
    UNIT_PRICE,
    as_json,
    bundle,
    charge_item,
    encounter,
)

FHIR_JSON = {"Content-Type": "application/fhir+json"}
H001_TAG = {"system": "urn:drgwatch:hospital", "code": "H001"}
MAPPING_FILE = """
organizations: {org-h001: H001}
hospitals:
  H001:
    locations: {ward-3a: CARD, ward-5b: SURG}
    organizations: {dept-card: CARD}
category_systems: {http://loinc.org: lab}
"""


@pytest.fixture
def any_api(any_api: Api) -> Api:
    """The app on PostgreSQL, or on a SQLite file, reading FHIR with the tests' mapping."""
    any_api.app.state.fhir_mapping = MAPPING
    return any_api


async def post(api: Api, document: Any, **headers: str) -> httpx.Response:
    return await api.client.post(
        "/v1/fhir", content=as_json(document), headers={**FHIR_JSON, **headers}
    )


async def ledger(api: Api, case_id: str = "E1") -> list[dict[str, Any]]:
    rows = await api.rows(
        "SELECT payload FROM ingest_ledger WHERE hospital_id = 'H001' AND case_id = :case"
        " ORDER BY case_seq",
        case=case_id,
    )
    return [orjson.loads(row.payload) for row in rows]


def case_of(events: list[dict[str, Any]]) -> CaseState:
    """The case as the cost core folds the ledger's events (in ledger order)."""
    state = new_case("H001", "E1")
    for event in events:
        apply_event(state, parse_event(event), book(), datetime.now(UTC))
    return state


async def letters(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/dead-letters", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def statuses(answer: dict[str, Any]) -> list[str]:
    return [entry["response"]["status"] for entry in answer["entry"]]


def lab(item_id: str, amount: str, **over: Any) -> dict[str, Any]:
    price = {"priceOverride": {"value": Decimal(amount), "currency": "CNY"}}
    return charge_item(item_id, **(price | over))


async def test_a_transaction_bundle_moves_the_case_total(any_api: Api) -> None:
    document = bundle(
        "transaction",
        encounter(),
        lab("CI1", "30.50"),
        charge_item(
            "CI2",
            code={
                "coding": [{"system": "urn:nhsa:consumable", "code": "C0301", "display": "Stent"}]
            },
            quantity={"value": Decimal("1")},
            priceOverride=None,
            extension=[
                {"url": UNIT_PRICE, "valueMoney": {"value": Decimal("12800.00"), "currency": "CNY"}}
            ],
        ),
    )
    response = await post(any_api, document)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    answer = response.json()
    assert answer["resourceType"] == "Bundle" and answer["type"] == "transaction-response"
    assert statuses(answer) == ["201 Created"] * 3
    assert answer["entry"][1]["response"]["location"] == "ChargeItem/CI1/_history/1"
    events = await ledger(any_api)
    assert [(e["event_id"], e["type"]) for e in events] == [
        ("fhir:enc:E1:admitted", "admitted"),
        ("fhir:ci:CI1", "charge"),
        ("fhir:ci:CI2", "charge"),
    ]
    case = case_of(events)
    assert case.total_cost == Decimal("12830.50")
    assert case.cost_by_category == {"lab": Decimal("30.50"), "consumable": Decimal("12800.00")}

    # sent again (a retry after a lost answer): every entry is known, nothing is added
    again = await post(any_api, document)
    assert again.status_code == 200, again.text
    assert statuses(again.json()) == ["200 OK"] * 3
    assert await ledger(any_api) == events


async def test_a_code_the_mapping_leaves_uncategorised_takes_the_chargemasters_category(
    any_api: Api,
) -> None:
    await store_sample_chargemaster(any_api)
    document = bundle(
        "transaction",
        encounter(),
        # in the sample chargemaster: a consumable
        lab("CI1", "11800.00", code={"coding": [{"system": LOCAL_ITEMS, "code": "C-STENT-IMP"}]}),
        # the sample says procedure; the mapping's LOINC system says lab, and wins
        lab("CI2", "1650.00", code={"coding": [{"system": LOINC, "code": "P-PCI"}]}),
        # in neither
        lab("CI3", "3.00", code={"coding": [{"system": LOCAL_ITEMS, "code": "X42"}]}),
    )
    response = await post(any_api, document)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert statuses(answer) == ["201 Created"] * 4
    # (the other warnings say the March stay is a backfill)
    warnings = [
        (index, issue["expression"], issue["diagnostics"])
        for index, entry in enumerate(answer["entry"])
        for issue in entry["response"]["outcome"]["issue"]
        if issue["severity"] == "warning" and issue["expression"][0].startswith("ChargeItem.code")
    ]
    assert warnings == [
        (
            3,
            ["ChargeItem.code.coding[0].code"],
            f"item X42 (system {LOCAL_ITEMS}) is in neither the mapping's category_systems"
            " nor the chargemaster in force for H001 on 2026-03-02: counted as other",
        )
    ]
    charges = [e for e in await ledger(any_api) if e["type"] == "charge"]
    assert [(e["item_code"], e["category"]) for e in charges] == [
        ("C-STENT-IMP", "consumable"),
        ("P-PCI", "lab"),
        ("X42", "other"),
    ]


async def test_a_transaction_with_one_bad_entry_records_nothing(any_api: Api) -> None:
    bad = lab("CI2", "1.00", quantity={"value": Decimal("300")})  # no 4-place unit price
    response = await post(any_api, bundle("transaction", encounter(), lab("CI1", "30.50"), bad))

    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    [issue] = outcome["issue"]
    assert issue["severity"] == "error"
    assert issue["expression"] == ["Bundle.entry[2].resource.priceOverride.value"]
    assert await ledger(any_api) == []
    [letter] = await letters(any_api)
    assert letter["hospital_id"] == "H001" and letter["case_id"] == "E1"
    assert "priceOverride.value" in letter["reason"]
    assert orjson.loads(letter["payload"])["id"] == "CI2"


async def test_a_batch_takes_each_entry_on_its_own(any_api: Api) -> None:
    document = bundle(
        "batch",
        encounter(),
        lab("CI1", "30.50"),
        lab("CI2", "5.00", priceOverride={"value": Decimal("5.00"), "currency": "USD"}),
        {"resourceType": "Patient", "id": "P1"},
        lab("CI3", "10.00"),
    )
    response = await post(any_api, document)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "batch-response"
    assert statuses(answer) == [
        "201 Created",
        "201 Created",
        "422 Unprocessable Entity",
        "422 Unprocessable Entity",
        "201 Created",
    ]
    refused = answer["entry"][2]["response"]["outcome"]["issue"]
    assert refused[0]["expression"] == ["ChargeItem.priceOverride.currency"]
    assert "USD" in refused[0]["diagnostics"]
    assert answer["entry"][3]["response"]["outcome"]["issue"][0]["code"] == "not-supported"
    assert case_of(await ledger(any_api)).total_cost == Decimal("40.50")
    kept = {orjson.loads(letter["payload"]).get("id"): letter for letter in await letters(any_api)}
    assert set(kept) == {"CI2", "P1"}
    assert "USD" in kept["CI2"]["reason"] and kept["CI2"]["hospital_id"] == "H001"


async def test_entered_in_error_credits_the_original_amount(any_api: Api) -> None:
    await post(any_api, bundle("transaction", encounter(), lab("CI1", "30.50"), lab("CI2", "7.25")))
    withdrawn = lab(
        "CI1",
        "30.50",
        status="entered-in-error",
        meta={"versionId": "2", "lastUpdated": "2026-03-02T11:00:00+08:00", "tag": [H001_TAG]},
    )
    response = await post(any_api, withdrawn)

    assert response.status_code == 201, response.text
    assert response.headers["location"] == "ChargeItem/CI1/_history/2"
    notes = [issue["diagnostics"] for issue in response.json()["issue"]]
    assert "event fhir:ci:CI1:reversal: accepted" in notes
    events = await ledger(any_api)
    assert events[-1]["type"] == "credit" and events[-1]["amount"] == "30.50"
    assert events[-1]["reverses_event_id"] == "fhir:ci:CI1"
    assert case_of(events).total_cost == Decimal("7.25")
    assert (await post(any_api, withdrawn)).status_code == 200  # a resend: nothing new


async def test_entered_in_error_of_an_unknown_charge_is_refused_and_kept(any_api: Api) -> None:
    unknown = lab("CI404", "1.00", status="entered-in-error", meta={"tag": [H001_TAG]})
    response = await post(any_api, unknown)

    assert response.status_code == 422, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["ChargeItem.status"] and issue["code"] == "not-found"
    assert "fhir:ci:CI404" in issue["diagnostics"]
    [letter] = await letters(any_api)
    assert "never recorded" in letter["reason"] and letter["hospital_id"] == "H001"
    assert await ledger(any_api, "E1") == []


async def test_an_encounter_admits_transfers_and_discharges(any_api: Api) -> None:
    assert (await post(any_api, encounter())).status_code == 201
    moved = encounter(
        meta={"versionId": "2", "lastUpdated": "2026-03-03T10:05:00+08:00"},
        location=[
            {
                "location": {"reference": "Location/ward-3a"},
                "status": "completed",
                "period": {"start": "2026-03-02T08:00:00+08:00"},
            },
            {
                "location": {"reference": "Location/ward-5b"},
                "status": "active",
                "period": {"start": "2026-03-03T10:00:00+08:00"},
            },
        ],
    )
    assert (await post(any_api, moved)).status_code == 201
    finished = {
        **moved,
        "meta": {"versionId": "3", "lastUpdated": "2026-03-06T09:05:00+08:00"},
        "status": "finished",
        "period": {"start": "2026-03-02T08:00:00+08:00", "end": "2026-03-06T09:00:00+08:00"},
    }
    response = await post(any_api, finished)
    assert response.status_code == 201, response.text
    assert [(e["type"], e.get("department")) for e in await ledger(any_api)] == [
        ("admitted", "CARD"),
        ("transferred", "SURG"),
        ("discharged", None),
    ]
    case = case_of(await ledger(any_api))
    assert case.department == "SURG" and case.status == "discharged"


async def test_a_discharge_cancelled_in_the_same_bundle_and_a_discharge_after_it(
    any_api: Api,
) -> None:
    period = {"start": "2026-03-02T08:00:00+08:00", "end": "2026-03-04T09:00:00+08:00"}
    finished = encounter(
        status="finished",
        meta={"versionId": "2", "lastUpdated": "2026-03-04T09:05:00+08:00"},
        period=period,
    )
    # version 3 in the same Bundle: back in progress, period.end gone
    in_progress = encounter(
        meta={"versionId": "3", "lastUpdated": "2026-03-04T10:00:00+08:00"},
        period={"start": period["start"]},
    )
    response = await post(any_api, bundle("transaction", finished, in_progress))
    assert response.status_code == 200, response.text
    assert [(e["event_id"], e["type"]) for e in await ledger(any_api)] == [
        ("fhir:enc:E1:admitted", "admitted"),
        ("fhir:enc:E1:discharged", "discharged"),
        ("fhir:enc:E1:discharge-cancelled:3", "discharge_cancelled"),
    ]
    assert case_of(await ledger(any_api)).status == "open"
    # the same Bundle again records nothing; the real discharge, version 4, closes it
    again = await post(any_api, bundle("transaction", finished, in_progress))
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 2
    real = encounter(
        status="finished",
        meta={"versionId": "4", "lastUpdated": "2026-03-09T10:05:00+08:00"},
        period={**period, "end": "2026-03-09T10:00:00+08:00"},
    )
    assert (await post(any_api, real)).status_code == 201
    events = await ledger(any_api)
    assert events[-1]["event_id"] == "fhir:enc:E1:discharged:4"
    case = case_of(events)
    assert case.status == "discharged" and case.events_applied == 4
    assert case.discharged_at == datetime.fromisoformat("2026-03-09T10:00:00+08:00")


async def test_a_single_resource_is_refused_naming_the_element(any_api: Api) -> None:
    response = await post(any_api, {**encounter(), "status": "planned"})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["Encounter.status"]
    [letter] = await letters(any_api)
    assert letter["reason"].startswith("Encounter.status: planned")


async def test_malformed_json_and_other_resources_are_400_and_kept(any_api: Api) -> None:
    broken = await any_api.client.post(
        "/v1/fhir", content=b'{"resourceType": "ChargeItem",', headers=FHIR_JSON
    )
    assert broken.status_code == 400, broken.text
    assert broken.json()["issue"][0]["code"] == "structure"
    other = await post(any_api, {"resourceType": "Claim", "id": "X1"})
    assert other.status_code == 400
    assert other.json()["issue"][0]["expression"] == ["resourceType"]
    reasons = sorted(letter["reason"] for letter in await letters(any_api))
    assert reasons[0].startswith("$: the body is not valid JSON")
    assert reasons[1].startswith("resourceType: Claim is not taken here")


async def test_plain_json_is_taken_and_other_media_types_are_not(api: Api) -> None:
    api.app.state.fhir_mapping = MAPPING
    plain = await api.client.post(
        "/v1/fhir", content=as_json(encounter()), headers={"Content-Type": "application/json"}
    )
    assert plain.status_code == 201, plain.text
    text = await api.client.post(
        "/v1/fhir", content=as_json(encounter()), headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 415


async def test_the_mapping_file_is_read_from_settings(
    postgres_url: str, pg_engine: Any, tmp_path: Path
) -> None:
    mapping = tmp_path / "fhir-mapping.yaml"
    mapping.write_text(MAPPING_FILE, encoding="utf-8")
    settings = ApiSettings(
        database_url=postgres_url,
        topic_prefix="drgwatch-test",
        data_dir=tmp_path,
        fhir_mapping=mapping,
    )
    app = create_app(settings, connect_broker=False)
    assert app.state.fhir_mapping.hospital("H001").locations == {
        "ward-3a": "CARD",
        "ward-5b": "SURG",
    }
    with pytest.raises(Exception, match="fhir-bad.yaml"):
        bad = tmp_path / "fhir-bad.yaml"
        bad.write_text("hospitals: {H001: {wards: {}}}", encoding="utf-8")
        create_app(ApiSettings(database_url=postgres_url, fhir_mapping=bad), connect_broker=False)


async def test_a_hospital_system_posts_for_its_own_hospital_only(api: Api) -> None:
    api.app.state.fhir_mapping = MAPPING
    async with api.sessions() as db_session:
        _, key = await access_service.create_identity(
            db_session=db_session,
            name="his",
            role="hospital_system",
            hospitals=["H001"],
            departments=[],
        )
        await db_session.commit()
    his = {"Authorization": f"Bearer {key}"}
    await post(api, encounter(), **his)
    # no tag and no Encounter beside it: the credential's one hospital is the hospital
    untagged = await post(api, lab("CI1", "12.00"), **his)
    assert untagged.status_code == 201, untagged.text
    assert [e["event_id"] for e in await ledger(api)] == ["fhir:enc:E1:admitted", "fhir:ci:CI1"]

    foreign = await post(
        api, encounter("E2", serviceProvider={"reference": "Organization/H002"}), **his
    )
    assert foreign.status_code == 403, foreign.text
    assert foreign.json()["resourceType"] == "OperationOutcome"
    assert foreign.json()["issue"][0]["code"] == "forbidden"
    assert await api.scalar("SELECT count(*) FROM ingest_ledger WHERE hospital_id = 'H002'") == 0
    # kept, but in no hospital's own list: only those who see every hospital list it
    [letter] = await letters(api)
    assert letter["hospital_id"] is None and letter["reason"].startswith("forbidden: Encounter/E2")


async def test_a_contract_refusal_names_the_fhir_element_and_nothing_builds_on_it(
    any_api: Api,
) -> None:
    bad_code = lab(
        "CI1",
        "8.00",
        code={"coding": [{"system": "urn:site:items", "code": "310100013:01", "display": "Bed"}]},
    )
    withdrawn = lab("CI1", "8.00", status="entered-in-error")
    response = await post(
        any_api, bundle("batch", encounter(), bad_code, withdrawn, lab("CI2", "3.00"))
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert statuses(answer) == [
        "201 Created",
        "422 Unprocessable Entity",
        "422 Unprocessable Entity",
        "201 Created",
    ]
    [issue] = answer["entry"][1]["response"]["outcome"]["issue"]
    assert issue["expression"] == ["ChargeItem.code.coding[0].code"]
    assert "item_code" in issue["diagnostics"]
    # the refused charge was never recorded, so the credit that withdraws it is refused too
    [issue] = answer["entry"][2]["response"]["outcome"]["issue"]
    assert issue["code"] == "not-found"
    assert case_of(await ledger(any_api)).total_cost == Decimal("3.00")
    assert len(await letters(any_api)) == 2


async def test_a_recorded_charge_sent_again_changed_is_refused_with_what_to_do(
    any_api: Api,
) -> None:
    await post(any_api, bundle("transaction", encounter(), lab("CI1", "30.50")))
    changed = lab("CI1", "45.75", meta={"versionId": "2", "tag": [H001_TAG]})
    response = await post(any_api, changed)

    assert response.status_code == 422, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["ChargeItem.id"] and issue["code"] == "business-rule"
    assert "entered-in-error" in issue["diagnostics"]
    assert case_of(await ledger(any_api)).total_cost == Decimal("30.50")
    [letter] = await letters(any_api)
    assert letter["hospital_id"] == "H001" and "45.75" in letter["payload"]
