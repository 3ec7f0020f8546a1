"""FHIR R4 resources shaped as hospital systems send them, and the site mapping the
tests read them with (valid unless a test breaks them)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from services.ingest.fhir.mapping import FhirMapping, HospitalMapping

INSURANCE = "urn:drgwatch:fhir:insurance-scheme"
DRG = "urn:drgwatch:fhir:drg"
UNIT_PRICE = "urn:drgwatch:fhir:unit-price"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
LOCAL_ITEMS = "urn:oid:1.2.156.112604.1.2.5"  # a site's own item codes: no category

MAPPING = FhirMapping(
    organizations={"org-h001": "H001"},
    sources={"http://his.h002.example/fhir": "H002"},
    hospitals={
        "H001": HospitalMapping(
            locations={"ward-3a": "CARD", "ward-5b": "SURG", "icu-1": "ICU"},
            organizations={"dept-card": "CARD", "dept-lab": "LAB"},
            service_types={"cardiology": "CARD"},
        ),
        "H002": HospitalMapping(department="GEN", insurance_scheme="resident"),
    },
    category_systems={ATC: "drug", LOINC: "lab", "urn:nhsa:consumable": "consumable"},
    drg_systems=["urn:chs-drg"],
)


def encounter(encounter_id: str = "E1", **over: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "meta": {"versionId": "1", "lastUpdated": "2026-03-02T08:05:00+08:00"},
        "extension": [
            {"url": INSURANCE, "valueCode": "employee"},
            {"url": DRG, "valueCoding": {"system": "urn:chs-drg", "code": "FM15"}},
        ],
        "status": "in-progress",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": "Patient/P1"},
        "period": {"start": "2026-03-02T08:00:00+08:00"},
        "location": [
            {
                "location": {"reference": "Location/ward-3a", "display": "Cardiology ward 3A"},
                "status": "active",
                "period": {"start": "2026-03-02T08:00:00+08:00"},
            }
        ],
        "serviceProvider": {"reference": "Organization/org-h001"},
    }
    resource.update(over)
    return resource


def charge_item(item_id: str = "CI1", **over: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ChargeItem",
        "id": item_id,
        "meta": {"versionId": "1", "lastUpdated": "2026-03-02T09:05:00+08:00"},
        "status": "billable",
        "code": {
            "coding": [{"system": LOINC, "code": "24323-8", "display": "Metabolic panel"}],
            "text": "Metabolic panel",
        },
        "subject": {"reference": "Patient/P1"},
        "context": {"reference": "Encounter/E1"},
        "occurrenceDateTime": "2026-03-02T09:00:00+08:00",
        "performer": [{"actor": {"reference": "Practitioner/dr-wang"}}],
        "requestingOrganization": {"reference": "Organization/dept-card"},
        "quantity": {"value": Decimal("2")},
        "priceOverride": {"value": Decimal("30.50"), "currency": "CNY"},
    }
    resource.update(over)
    return resource


def bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{index:012d}",
                "resource": resource,
                "request": {
                    "method": "PUT",
                    "url": f"{resource['resourceType']}/{resource.get('id')}",
                },
            }
            for index, resource in enumerate(resources)
        ],
    }


def as_json(document: Any) -> bytes:
    """FHIR JSON, every Decimal written as the JSON number it is (30.50 stays 30.50)."""

    def number(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"\u00a7{value}\u00a7"
        raise TypeError(type(value).__name__)

    text = json.dumps(document, default=number, ensure_ascii=False)
    return text.replace('"\u00a7', "").replace('\u00a7"', "").encode()
