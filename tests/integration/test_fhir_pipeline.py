"""FHIR through the real pipeline: POST /v1/fhir -> ledger -> tansu -> Faust worker ->
PostgreSQL -> the case API. A transaction Bundle moves the case's total; withdrawing a
charge (entered-in-error) takes exactly its amount off again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import Stack, running_stack
from tests.unit.fhir_samples import UNIT_PRICE, as_json, bundle, charge_item, encounter

pytestmark = pytest.mark.integration
HOSPITAL = f"HF{uuid.uuid4().hex[:6]}"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
TAG = {"system": "urn:drgwatch:hospital", "code": HOSPITAL}


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("fhir-stack")
    mapping = workdir / "fhir-mapping.yaml"
    mapping.write_text(
        f"hospitals:\n  {HOSPITAL}:\n    locations: {{ward-3a: CARD}}\n"
        "category_systems: {http://loinc.org: lab, urn:nhsa:consumable: consumable}\n",
        encoding="utf-8",
    )
    with running_stack(workdir, postgres_url, {"DRGWATCH_FHIR_MAPPING": str(mapping)}) as running:
        yield running


def post(stack: Stack, document: Any) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/v1/fhir", content=as_json(document), headers=FHIR_JSON, timeout=30
    )


def total(stack: Stack, case_id: str) -> Decimal | None:
    response = httpx.get(f"{stack.url}/v1/hospitals/{HOSPITAL}/cases/{case_id}", timeout=5)
    return Decimal(response.json()["total_cost"]) if response.status_code == 200 else None


def tagged(resource: dict[str, Any]) -> dict[str, Any]:
    return {**resource, "meta": {**resource.get("meta", {}), "tag": [TAG]}}


def test_a_bundle_moves_the_case_and_a_withdrawn_charge_comes_off(stack: Stack) -> None:
    admission = tagged(encounter("ZY-1", serviceProvider=None))
    del admission["serviceProvider"]
    stent = charge_item(
        "CI-STENT",
        context={"reference": "Encounter/ZY-1"},
        code={"coding": [{"system": "urn:nhsa:consumable", "code": "C0301", "display": "Stent"}]},
        quantity={"value": Decimal("1")},
        priceOverride=None,
        extension=[{"url": UNIT_PRICE, "valueMoney": {"value": Decimal("12800.00")}}],
        requestingOrganization=None,
    )
    panel = charge_item(
        "CI-LAB", context={"reference": "Encounter/ZY-1"}, requestingOrganization=None
    )
    response = post(stack, bundle("transaction", admission, stent, panel))
    assert response.status_code == 200, response.text
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["201 Created"] * 3

    stack.wait_for(lambda: total(stack, "ZY-1") == Decimal("12830.50"), timeout=60)
    case = httpx.get(f"{stack.url}/v1/hospitals/{HOSPITAL}/cases/ZY-1", timeout=5).json()
    assert case["department"] == "CARD" and case["drg_code"] == "FM15"
    assert case["cost_by_category"] == {"consumable": "12800.00", "lab": "30.50"}

    withdrawn = tagged({**stent, "status": "entered-in-error"})
    withdrawn["meta"] |= {"versionId": "2", "lastUpdated": "2026-03-02T12:00:00+08:00"}
    assert post(stack, withdrawn).status_code == 201
    stack.wait_for(lambda: total(stack, "ZY-1") == Decimal("30.50"), timeout=60)
    case = httpx.get(f"{stack.url}/v1/hospitals/{HOSPITAL}/cases/ZY-1", timeout=5).json()
    assert case["events_applied"] == 4  # admitted, two charges, one credit
    # a resend records nothing: the same event ids are recognised before the ledger
    assert post(stack, withdrawn).status_code == 200
    again = post(stack, bundle("transaction", admission, stent, panel))
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 3


def listed(stack: Stack, status: str) -> set[str]:
    response = httpx.get(
        f"{stack.url}/v1/hospitals/{HOSPITAL}/cases", params={"status": status}, timeout=5
    )
    response.raise_for_status()
    return {item["case_id"] for item in response.json()["items"]}


def test_an_encounter_back_in_progress_reopens_the_discharged_case(stack: Stack) -> None:
    period = {"start": "2026-03-02T08:00:00+08:00", "end": "2026-03-04T10:00:00+08:00"}
    stay = tagged(encounter("ZY-2", status="finished", period=period))
    stay["meta"] |= {"versionId": "2", "lastUpdated": "2026-03-04T10:05:00+08:00"}
    del stay["serviceProvider"]
    drug = charge_item(
        "CI-DRUG-2", context={"reference": "Encounter/ZY-2"}, requestingOrganization=None
    )
    response = post(stack, bundle("transaction", stay, drug))
    assert response.status_code == 200, response.text
    stack.wait_for(lambda: "ZY-2" in listed(stack, "discharged"), timeout=60)

    # version 3: the discharge was a mistake; the stay goes on, with no period.end
    reopened = tagged(encounter("ZY-2", period={"start": period["start"]}))
    reopened["meta"] |= {"versionId": "3", "lastUpdated": "2026-03-04T11:00:00+08:00"}
    del reopened["serviceProvider"]
    assert post(stack, reopened).status_code == 201
    stack.wait_for(lambda: "ZY-2" in listed(stack, "open"), timeout=60)
    case = stack.case(HOSPITAL, "ZY-2")
    assert case is not None
    assert (case["status"], case["discharged_at"], case["ratio_flag"]) == ("open", None, None)
    assert "ZY-2" not in listed(stack, "discharged")
    # a late charge still counts, exactly once
    late = tagged(
        charge_item(
            "CI-LATE-2",
            context={"reference": "Encounter/ZY-2"},
            requestingOrganization=None,
            occurrenceDateTime="2026-03-05T09:00:00+08:00",
        )
    )
    assert post(stack, late).status_code == 201
    stack.wait_for(lambda: total(stack, "ZY-2") == Decimal("61.00"), timeout=60)
    case = stack.case(HOSPITAL, "ZY-2")
    assert case is not None and case["status"] == "open" and case["events_applied"] == 5
