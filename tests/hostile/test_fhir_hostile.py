"""Hostile input to POST /v1/fhir: every case of corpus/ and FHIR-shaped attacks are
refused with a 4xx OperationOutcome that says why, nothing is ledgered, and each
refusal is kept as a dead letter; the app still accepts a good resource afterwards."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.conftest import Api
from tests.hostile.test_corpus import corpus_cases
from tests.unit.fhir_samples import MAPPING, as_json, bundle, charge_item, encounter

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"url": "urn:x", "valueString": "leaf"}
    for _ in range(depth):
        value = {"url": "urn:x", "extension": [value]}
    return value


HOSTILE: dict[str, bytes] = {
    "nul-in-id": as_json(charge_item("CI\x001")),
    "id-over-64": as_json(charge_item("C" * 65)),
    "control-in-display": as_json(
        charge_item(
            code={"coding": [{"system": "http://loinc.org", "code": "1-8", "display": "a\u202eb"}]}
        )
    ),
    "price-1e999999": as_json(charge_item(priceOverride={"value": Decimal("1e999999")})),
    "price-negative": as_json(charge_item(priceOverride={"value": Decimal("-30.50")})),
    "price-billion": as_json(charge_item(priceOverride={"value": Decimal("1000000000.01")})),
    "quantity-tiny": as_json(charge_item(quantity={"value": Decimal("0.00001")})),
    "quantity-huge": as_json(charge_item(quantity={"value": Decimal("1e30")})),
    "price-as-string": as_json(charge_item(priceOverride={"value": "30.50"})),
    "deep-extensions": as_json(charge_item(extension=[nested(400)])),
    "deep-json": b'{"resourceType": "ChargeItem", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "context-a-patient": as_json(charge_item(context={"reference": "Patient/P1"})),
    "encounter-in-2150": as_json(encounter(period={"start": "2150-01-01T00:00:00+08:00"})),
    "bundle-1001": as_json(bundle("batch", *[charge_item(f"CI{n}") for n in range(1001)])),
    "bundle-entry-not-object": b'{"resourceType": "Bundle", "type": "transaction", "entry": [1]}',
    "bundle-entry-null-resource": (
        b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": null}]}'
    ),
    "bundle-in-bundle": as_json(bundle("transaction", bundle("batch", charge_item()))),
    "resource-type-number": b'{"resourceType": 7}',
    "utf16": as_json(charge_item()).decode().encode("utf-16"),
}


async def refused(api: Api, body: bytes, case: str) -> None:
    before = int(await api.scalar("SELECT count(*) FROM dead_letters"))
    response = await api.client.post("/v1/fhir", content=body, headers=FHIR_JSON)
    assert 400 <= response.status_code < 500, (
        f"{case}: {response.status_code} {response.text[:300]}"
    )
    answer = response.json()
    if answer.get("resourceType") == "Bundle":  # a batch: each entry answers for itself
        outcomes = [entry["response"].get("outcome") for entry in answer["entry"]]
    else:
        outcomes = [answer]
    for outcome in outcomes:
        assert outcome and outcome["resourceType"] == "OperationOutcome", f"{case}: {answer}"
        assert all(issue["diagnostics"] for issue in outcome["issue"]), f"{case}: {outcome}"
    assert int(await api.scalar("SELECT count(*) FROM ingest_ledger")) == 0, f"{case}: ledgered"
    after = int(await api.scalar("SELECT count(*) FROM dead_letters WHERE reason <> ''"))
    assert after > before, f"{case}: no dead letter kept"


@pytest.fixture
def fhir_api(api: Api) -> Api:
    api.app.state.fhir_mapping = MAPPING
    return api


async def test_every_corpus_case_is_refused_in_fhir_and_kept(fhir_api: Api) -> None:
    cases = corpus_cases()
    assert len(cases) >= 200
    for path in cases:
        await refused(fhir_api, path.read_bytes(), path.name)


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_fhir_shaped_attacks_are_refused_and_kept(fhir_api: Api, case: str) -> None:
    await refused(fhir_api, HOSTILE[case], case)
    # and the app still takes a good resource
    good = await fhir_api.client.post("/v1/fhir", content=as_json(encounter()), headers=FHIR_JSON)
    assert good.status_code == 201, good.text


def test_the_corpus_is_where_test_corpus_reads_it() -> None:
    assert Path(corpus_cases()[0]).exists()
