"""FHIR R4 resources as contract v1 events: the pure translation, resource by resource.

Every event a translation yields is checked against the contract itself (parse_event),
so a mapping that drifts from the contract fails here and not at a hospital.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.casecost.chargemaster import ChargeBook
from services.casecost.events import parse_event
from services.ingest.fhir import resources, translate
from services.ingest.fhir.mapping import FhirMapping, MappingRefused, load_mapping
from services.ingest.fhir.outcome import Issue
from services.ingest.fhir.translate import CaseRef, KnownCase, Refused
from tests.unit.chargemaster_samples import sample_charge_book
from tests.unit.fhir_samples import (
    ATC,
    DRG,
    INSURANCE,
    LOCAL_ITEMS,
    MAPPING,
    UNIT_PRICE,
    as_json,
    bundle,
    charge_item,
    encounter,
)

ZONE = ZoneInfo("Asia/Shanghai")
NO_CHARGEMASTER = ChargeBook()
SAMPLE_BOOK = sample_charge_book()
CASE = CaseRef("H001", "E1")
UNSEEN = KnownCase()
IN_CARD = KnownCase(admitted=True, department="CARD", drg_code="FM15")


def parsed(raw: dict[str, Any]) -> Any:
    resource = resources.parse(raw)
    assert not isinstance(resource, list), resource
    return resource


def events_of_encounter(
    raw: dict[str, Any], known: KnownCase = UNSEEN, mapping: FhirMapping = MAPPING
) -> list[dict[str, Any]]:
    resource = parsed(raw)
    hospital = translate.hospital_of(resource, mapping=mapping, bundle_hospital=None)
    translation = translate.encounter_events(
        resource, hospital_id=hospital, known=known, mapping=mapping, zone=ZONE
    )
    for event in translation.events:
        parse_event(event)  # every event is a valid contract v1 event
    return translation.events


def charge_translation(
    raw: dict[str, Any],
    known: KnownCase = IN_CARD,
    original: dict[str, Any] | None = None,
    charge_book: ChargeBook = NO_CHARGEMASTER,
) -> translate.Translation:
    translation = translate.charge_events(
        parsed(raw),
        case=CASE,
        known=known,
        original=original,
        mapping=MAPPING,
        zone=ZONE,
        charge_book=charge_book,
    )
    assert len(translation.events) == 1
    parse_event(translation.events[0])
    return translation


def charge_of(
    raw: dict[str, Any],
    known: KnownCase = IN_CARD,
    original: dict[str, Any] | None = None,
    charge_book: ChargeBook = NO_CHARGEMASTER,
) -> dict[str, Any]:
    return charge_translation(raw, known, original, charge_book).events[0]


def refusal(call: Any) -> Issue:
    with pytest.raises(Refused) as refused:
        call()
    assert len(refused.value.issues) == 1
    return refused.value.issues[0]


# ---- Encounter ----


def test_an_inpatient_encounter_in_progress_is_an_admission() -> None:
    assert events_of_encounter(encounter()) == [
        {
            "hospital_id": "H001",
            "case_id": "E1",
            "event_id": "fhir:enc:E1:admitted",
            "type": "admitted",
            "occurred_at": "2026-03-02T08:00:00+08:00",
            "admitted_at": "2026-03-02T08:00:00+08:00",
            "department": "CARD",
            "insurance_scheme": "employee",
            "drg_code": "FM15",
        }
    ]


def test_hospital_by_tag_department_by_service_type_drg_by_diagnosis() -> None:
    raw = encounter(
        meta={"tag": [{"system": "urn:drgwatch:hospital", "code": "H001"}]},
        extension=[{"url": INSURANCE, "valueString": "resident"}],
        location=[{"location": {"reference": "Location/unknown-bed-12"}}],
        serviceType={"coding": [{"system": "urn:site:services", "code": "cardiology"}]},
        diagnosis=[
            {"condition": {"reference": "Condition/c1"}, "rank": 2},
            {"condition": {"identifier": {"system": "urn:chs-drg", "value": "FN19"}}},
        ],
    )
    del raw["serviceProvider"]
    [admitted] = events_of_encounter(raw)
    assert (admitted["hospital_id"], admitted["department"], admitted["drg_code"]) == (
        "H001",
        "CARD",
        "FN19",
    )
    assert admitted["insurance_scheme"] == "resident"


def test_a_hospital_by_meta_source_takes_its_mapped_department_and_scheme() -> None:
    raw = encounter(
        "ZY2026-000123",
        meta={"source": "http://his.h002.example/fhir"},
        extension=[],
        location=[],
        status="arrived",
    )
    del raw["serviceProvider"]
    [admitted] = events_of_encounter(raw)
    assert admitted["hospital_id"] == "H002" and admitted["case_id"] == "ZY2026-000123"
    assert admitted["department"] == "GEN" and admitted["insurance_scheme"] == "resident"
    assert "drg_code" not in admitted  # the working DRG may come later


def test_a_changed_location_is_a_transfer_once_per_version() -> None:
    moved = encounter(
        meta={"versionId": "2", "lastUpdated": "2026-03-03T10:05:00+08:00"},
        location=[
            {
                "location": {"reference": "Location/ward-3a"},
                "status": "completed",
                "period": {
                    "start": "2026-03-02T08:00:00+08:00",
                    "end": "2026-03-03T10:00:00+08:00",
                },
            },
            {
                "location": {"reference": "Location/ward-5b"},
                "status": "active",
                "period": {"start": "2026-03-03T10:00:00+08:00"},
            },
        ],
    )
    [transfer] = events_of_encounter(moved, known=IN_CARD)
    assert transfer == {
        "hospital_id": "H001",
        "case_id": "E1",
        "event_id": "fhir:enc:E1:transfer:2",
        "type": "transferred",
        "occurred_at": "2026-03-03T10:00:00+08:00",
        "department": "SURG",
    }
    # once recorded, the same version (or a later one with nothing new) adds nothing
    assert events_of_encounter(moved, known=translate.after(IN_CARD, [transfer])) == []


def test_an_encounter_first_seen_after_a_move_is_admitted_where_it_began() -> None:
    raw = encounter(
        meta={},  # no versionId: the transfer id hashes the new department and its time
        location=[
            {
                "location": {"reference": "Location/icu-1"},
                "period": {"start": "2026-03-04T01:00:00+08:00"},
            },
            {
                "location": {"reference": "Location/ward-3a"},
                "period": {"start": "2026-03-02T08:00:00+08:00"},
            },
        ],
    )
    admitted, transfer = events_of_encounter(raw)
    assert admitted["department"] == "CARD"
    assert transfer["department"] == "ICU"
    assert transfer["occurred_at"] == "2026-03-04T01:00:00+08:00"
    assert transfer["event_id"].startswith("fhir:enc:E1:transfer:")
    assert events_of_encounter(raw)[1]["event_id"] == transfer["event_id"]  # deterministic


def test_a_new_drg_is_a_regrouping_dated_by_the_version() -> None:
    raw = encounter(
        meta={"versionId": "4", "lastUpdated": "2026-03-05T16:00:00+08:00"},
        extension=[{"url": INSURANCE, "valueCode": "employee"}, {"url": DRG, "valueCode": "FN19"}],
    )
    assert events_of_encounter(raw, known=IN_CARD) == [
        {
            "hospital_id": "H001",
            "case_id": "E1",
            "event_id": "fhir:enc:E1:drg:4",
            "type": "drg_assigned",
            "occurred_at": "2026-03-05T16:00:00+08:00",
            "drg_code": "FN19",
        }
    ]


def test_a_finished_encounter_discharges_once() -> None:
    raw = encounter(
        status="finished",
        period={"start": "2026-03-02T08:00:00+08:00", "end": "2026-03-09T10:30:00+08:00"},
    )
    admitted, discharged = events_of_encounter(raw)  # never seen before: both at once
    assert admitted["type"] == "admitted"
    assert discharged == {
        "hospital_id": "H001",
        "case_id": "E1",
        "event_id": "fhir:enc:E1:discharged",
        "type": "discharged",
        "occurred_at": "2026-03-09T10:30:00+08:00",
        "discharged_at": "2026-03-09T10:30:00+08:00",
    }
    done = KnownCase(admitted=True, department="CARD", drg_code="FM15", discharged=True)
    assert events_of_encounter(raw, known=done) == []


def test_an_encounter_in_progress_again_cancels_the_discharge_and_a_later_one_redischarges() -> (
    None
):
    finished = encounter(
        status="finished",
        meta={"versionId": "2", "lastUpdated": "2026-03-09T10:35:00+08:00"},
        period={"start": "2026-03-02T08:00:00+08:00", "end": "2026-03-09T10:30:00+08:00"},
    )
    known = translate.after(UNSEEN, events_of_encounter(finished))
    assert known.discharged and known.discharge_moment is not None
    # version 3: back in progress, period.end gone: the discharge was a mistake
    again = encounter(meta={"versionId": "3", "lastUpdated": "2026-03-09T11:00:00+08:00"})
    [cancelled] = events_of_encounter(again, known=known)
    assert cancelled == {
        "hospital_id": "H001",
        "case_id": "E1",
        "event_id": "fhir:enc:E1:discharge-cancelled:3",
        "type": "discharge_cancelled",
        "occurred_at": "2026-03-09T11:00:00+08:00",
    }
    reopened = translate.after(known, [cancelled])
    assert not reopened.discharged and reopened.reopened
    assert events_of_encounter(again, known=reopened) == []  # sent again: nothing new
    assert events_of_encounter(finished, known=reopened) == []  # the withdrawn version
    # the real discharge, version 4, ended earlier than the cancellation was recorded:
    # dated when it was recorded, under an id of its own
    final = encounter(
        status="finished",
        meta={"versionId": "4", "lastUpdated": "2026-03-12T09:00:00+08:00"},
        period={"start": "2026-03-02T08:00:00+08:00", "end": "2026-03-09T10:30:00+08:00"},
    )
    [discharged] = events_of_encounter(final, known=reopened)
    assert discharged["event_id"] == "fhir:enc:E1:discharged:4"
    assert discharged["occurred_at"] == "2026-03-12T09:00:00+08:00"
    assert discharged["discharged_at"] == "2026-03-09T10:30:00+08:00"


def test_an_older_version_in_progress_does_not_cancel_a_later_discharge() -> None:
    finished = encounter(
        status="finished",
        period={"start": "2026-03-02T08:00:00+08:00", "end": "2026-03-09T10:30:00+08:00"},
    )
    known = translate.after(UNSEEN, events_of_encounter(finished))
    # version 1 (lastUpdated 2 March) arrives again after the discharge
    assert events_of_encounter(encounter(), known=known) == []
    # a discharged case's Encounter not finished and undated cannot be placed in time
    undated = encounter(meta={"versionId": "5"})
    issue = refusal(lambda: events_of_encounter(undated, known=known))
    assert issue.expression == "Encounter.meta.lastUpdated"


def test_a_finished_encounter_without_its_end_is_refused() -> None:
    raw = encounter(status="finished")
    issue = refusal(lambda: events_of_encounter(raw, known=IN_CARD))
    assert issue.expression == "Encounter.period.end"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("planned", "business-rule"),
        ("cancelled", "not-supported"),
        ("entered-in-error", "not-supported"),
    ],
)
def test_encounters_that_are_no_stay_are_refused_with_why(status: str, code: str) -> None:
    issue = refusal(lambda: events_of_encounter(encounter(status=status)))
    assert issue.expression == "Encounter.status" and issue.code == code
    assert status in issue.reason


def test_an_unmapped_location_is_named() -> None:
    raw = encounter(location=[{"location": {"reference": "Location/ward-9z"}}])
    issue = refusal(lambda: events_of_encounter(raw))
    assert issue.expression == "Encounter.location"
    assert "Location/ward-9z" in issue.reason and "hospitals.H001.locations" in issue.reason


def test_no_insurance_scheme_and_no_period_start_are_refused() -> None:
    issue = refusal(lambda: events_of_encounter(encounter(extension=[])))
    assert issue.expression == "Encounter.extension" and INSURANCE in issue.reason
    issue = refusal(lambda: events_of_encounter(encounter(period={})))
    assert issue.expression == "Encounter.period.start"


def test_no_hospital_is_refused_naming_where_to_say_it() -> None:
    raw = encounter()
    del raw["serviceProvider"]
    issue = refusal(lambda: events_of_encounter(raw))
    assert issue.expression == "Encounter.serviceProvider"


# ---- ChargeItem ----


def test_a_billable_charge_item_is_a_charge_to_the_cent() -> None:
    assert charge_of(charge_item()) == {
        "event_id": "fhir:ci:CI1",
        "type": "charge",
        "hospital_id": "H001",
        "case_id": "E1",
        "occurred_at": "2026-03-02T09:00:00+08:00",
        "department": "CARD",
        "item_code": "24323-8",
        "item_name": "Metabolic panel",
        "category": "lab",
        "quantity": "2",
        "unit_price": "15.2500",
        "amount": "30.50",
        "ordered_by": "dr-wang",
    }


def test_a_unit_price_extension_prices_the_line_exactly() -> None:
    raw = charge_item(
        code={"coding": [{"system": ATC, "code": "B01AC06", "display": "acetylsalicylic acid"}]},
        quantity={"value": Decimal("3")},
        extension=[
            {"url": UNIT_PRICE, "valueMoney": {"value": Decimal("0.3333"), "currency": "CNY"}}
        ],
        priceOverride=None,
    )
    charge = charge_of(raw)
    assert (charge["category"], charge["unit_price"], charge["amount"]) == (
        "drug",
        "0.3333",
        "1.00",
    )
    # the two, when both are sent, must agree
    raw["priceOverride"] = {"value": Decimal("1.01"), "currency": "CNY"}
    issue = refusal(lambda: charge_of(raw))
    assert issue.expression == "ChargeItem.priceOverride.value" and "0.3333" in issue.reason


def test_a_site_code_is_other_and_a_missing_quantity_is_one_unit() -> None:
    raw = charge_item(
        code={"coding": [{"system": LOCAL_ITEMS, "code": "310100013"}], "text": "Bed, ward"},
        performer=None,
        enterer={"reference": "Practitioner/nurse-li"},
        requestingOrganization=None,
        occurrenceDateTime=None,
        enteredDate="2026-03-02",  # a date only: the start of that local day
    )
    del raw["quantity"]
    charge = charge_of(raw, known=KnownCase(admitted=True, department="SURG"))
    assert charge["category"] == "other" and charge["item_name"] == "Bed, ward"
    assert (charge["quantity"], charge["unit_price"], charge["amount"]) == ("1", "30.5000", "30.50")
    assert charge["ordered_by"] == "nurse-li"
    assert charge["department"] == "SURG"  # the case's department where no organisation says
    assert charge["occurred_at"] == "2026-03-02T00:00:00+08:00"


def test_a_code_the_mapping_does_not_categorise_takes_the_chargemasters_category() -> None:
    raw = charge_item(code={"coding": [{"system": LOCAL_ITEMS, "code": "C-STENT-IMP"}]})
    translation = charge_translation(raw, charge_book=SAMPLE_BOOK)
    assert translation.events[0]["category"] == "consumable"
    assert translation.notes == []


def test_the_mappings_category_wins_over_the_chargemasters() -> None:
    # the sample lists P-PCI as a procedure; the coding's system is mapped to lab
    raw = charge_item(code={"coding": [{"system": "http://loinc.org", "code": "P-PCI"}]})
    assert charge_of(raw, charge_book=SAMPLE_BOOK)["category"] == "lab"


def test_a_code_in_neither_the_mapping_nor_the_chargemaster_is_other_with_a_warning() -> None:
    raw = charge_item(code={"coding": [{"system": LOCAL_ITEMS, "code": "310100013"}]})
    translation = charge_translation(raw, charge_book=SAMPLE_BOOK)
    assert translation.events[0]["category"] == "other"
    assert translation.notes == [
        Issue(
            "ChargeItem.code.coding[0].code",
            f"item 310100013 (system {LOCAL_ITEMS}) is in neither the mapping's"
            " category_systems nor the chargemaster in force for H001 on 2026-03-02:"
            " counted as other",
            "informational",
            "warning",
        )
    ]
    # before the chargemaster is in force, its items are not known either
    stent = charge_item(code={"coding": [{"system": LOCAL_ITEMS, "code": "C-STENT-IMP"}]})
    later = sample_charge_book(valid_from=date(2026, 3, 3))
    assert charge_of(stent, charge_book=later)["category"] == "other"


def test_an_amount_no_unit_price_gives_is_refused() -> None:
    raw = charge_item(quantity={"value": Decimal("300")}, priceOverride={"value": Decimal("1.00")})
    issue = refusal(lambda: charge_of(raw))
    assert issue.expression == "ChargeItem.priceOverride.value" and UNIT_PRICE in issue.reason


@pytest.mark.parametrize(
    ("over", "expression"),
    [
        ({"priceOverride": None}, "ChargeItem.priceOverride"),
        (
            {"priceOverride": {"value": Decimal("5.00"), "currency": "USD"}},
            "ChargeItem.priceOverride.currency",
        ),
        ({"status": "planned"}, "ChargeItem.status"),
        ({"code": {"text": "free text only"}}, "ChargeItem.code.coding"),
        ({"quantity": {"value": Decimal("0")}}, "ChargeItem.quantity.value"),
        ({"occurrenceDateTime": None}, "ChargeItem.occurrenceDateTime"),
    ],
)
def test_charge_items_missing_what_a_charge_needs_are_refused(
    over: dict[str, Any], expression: str
) -> None:
    raw = {key: value for key, value in charge_item(**over).items() if value is not None}
    assert refusal(lambda: charge_of(raw)).expression == expression


def test_the_r4_context_names_the_case() -> None:
    item = parsed(
        charge_item(context={"reference": "http://his.example/fhir/Encounter/ZY-9/_history/3"})
    )
    assert translate.case_of_charge(item, {}) == "ZY-9"
    item = parsed(charge_item(context={"reference": "urn:uuid:0001"}))
    assert translate.case_of_charge(item, {"urn:uuid:0001": "E7"}) == "E7"
    item = parsed({k: v for k, v in charge_item().items() if k != "context"})
    issue = refusal(lambda: translate.case_of_charge(item, {}))
    assert issue.expression == "ChargeItem.context"


def test_entered_in_error_credits_exactly_the_original_charge() -> None:
    original = charge_of(charge_item())
    withdrawn = charge_item(
        status="entered-in-error",
        meta={"versionId": "2", "lastUpdated": "2026-03-02T11:00:00+08:00"},
        priceOverride={"value": Decimal("99.99"), "currency": "CNY"},  # what counts is the charge
    )
    credit = charge_of(withdrawn, original=original)
    assert credit == {
        **{key: original[key] for key in translate.REVERSED_FIELDS if key in original},
        "event_id": "fhir:ci:CI1:reversal",
        "type": "credit",
        "occurred_at": "2026-03-02T11:00:00+08:00",
        "reverses_event_id": "fhir:ci:CI1",
    }
    assert credit["amount"] == "30.50"


def test_entered_in_error_of_an_unknown_charge_is_refused() -> None:
    issue = refusal(lambda: charge_of(charge_item(status="entered-in-error")))
    assert issue.expression == "ChargeItem.status" and issue.code == "not-found"
    assert "fhir:ci:CI1" in issue.reason


def test_a_long_id_gives_a_bounded_deterministic_event_id() -> None:
    long_id = "A" * 64
    first = translate.event_id("ci", long_id, "reversal")
    assert len(first) <= 64 and first == translate.event_id("ci", long_id, "reversal")
    assert first != translate.event_id("ci", long_id)
    charge = charge_of(charge_item(long_id))
    assert len(charge["event_id"]) <= 64


# ---- reading submissions ----


def test_fhir_decimals_are_read_exactly() -> None:
    body = resources.decode(as_json(charge_item(priceOverride={"value": Decimal("30.10")})))
    assert body["priceOverride"]["value"] == Decimal("30.10")
    assert str(body["priceOverride"]["value"]) == "30.10"


@pytest.mark.parametrize(
    ("raw", "expression", "code"),
    [
        (b'{"resourceType": "ChargeItem", ', "$", "structure"),
        (b'{"resourceType": "ChargeItem", "quantity": {"value": NaN}}', "$", "structure"),
        (b"\xff\xfe", "$", "structure"),
        (b"[]", "$", "structure"),
        (b'{"resourceType": "Patient", "id": "P1"}', "resourceType", "not-supported"),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": []}',
            "Bundle.type",
            "not-supported",
        ),
        (b'{"resourceType": "Bundle", "type": "batch", "entry": []}', "Bundle.entry", "required"),
    ],
)
def test_unreadable_submissions_name_why(raw: bytes, expression: str, code: str) -> None:
    with pytest.raises(resources.Unreadable) as unreadable:
        resources.split(resources.decode(raw))
    assert (unreadable.value.issue.expression, unreadable.value.issue.code) == (expression, code)


def test_nesting_is_bounded_before_the_models_recurse() -> None:
    deep: dict[str, Any] = {"url": "urn:x", "valueString": "leaf"}
    for _ in range(resources.MAX_DEPTH):
        deep = {"url": "urn:x", "extension": [deep]}
    with pytest.raises(resources.Unreadable) as unreadable:
        resources.split(charge_item(extension=[deep]))
    assert unreadable.value.issue.code == "too-costly"
    assert resources.depth({"a": [{"b": 1}]}) == 3 and resources.depth(7) == 0


def test_a_bundle_splits_into_its_entries_in_order() -> None:
    submission = resources.split(
        resources.decode(as_json(bundle("transaction", encounter(), charge_item())))
    )
    assert submission.kind == "transaction"
    assert [entry.raw["resourceType"] for entry in submission.entries] == [
        "Encounter",
        "ChargeItem",
    ]
    assert submission.entries[1].full_url == "urn:uuid:00000000-0000-4000-8000-000000000001"


def test_r5_elements_and_bad_values_are_named_by_element() -> None:
    # R5 renamed ChargeItem.context to encounter and added totalPriceComponent: not R4
    issues = resources.parse(
        {**charge_item(), "encounter": {"reference": "Encounter/E1"}, "quantity": {"value": "many"}}
    )
    assert isinstance(issues, list)
    assert {issue.expression for issue in issues} == {
        "ChargeItem.encounter",
        "ChargeItem.quantity.value",
    }
    wrong = resources.parse({"resourceType": "Observation", "status": "final"})
    assert isinstance(wrong, list) and wrong[0].expression == "resourceType"


def test_an_issue_in_a_bundle_entry_is_named_inside_the_entry() -> None:
    issue = Issue("ChargeItem.quantity.value", "must be greater than zero")
    assert issue.in_entry(2).expression == "Bundle.entry[2].resource.quantity.value"
    assert (
        Issue("resourceType", "x").in_entry(0).expression == "Bundle.entry[0].resource.resourceType"
    )
    assert Issue("ChargeItem", "x").in_entry(1).expression == "Bundle.entry[1].resource"


def test_the_shipped_mapping_loads_and_a_bad_one_names_file_and_field(tmp_path: Any) -> None:
    shipped = load_mapping()
    assert shipped.category_systems["http://loinc.org"] == "lab"
    bad = tmp_path / "fhir.yaml"
    bad.write_text("category_systems:\n  http://loinc.org: labs\n", encoding="utf-8")
    with pytest.raises(MappingRefused) as refused:
        load_mapping(bad)
    assert str(bad) in refused.value.message and "category_systems" in refused.value.message
