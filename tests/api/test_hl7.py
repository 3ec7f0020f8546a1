"""POST /v1/hl7: HL7 v2 messages through the ingest core, on PostgreSQL and on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from services.casecost.apply import apply_event, new_case
from services.casecost.events import parse_event
from services.casecost.pricing import PriceBook
from services.reference.chargemaster import service as chargemaster_service
from tests.api.conftest import Api

HL7 = {"Content-Type": "x-application/hl7-v2+er7"}
SHANGHAI_NOW = datetime.now(UTC) + timedelta(hours=8)
# an hour ago, written as Beijing wall-clock time without an offset (as most HIS send it)
WHEN = (SHANGHAI_NOW - timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
SERVICE_DAY = (SHANGHAI_NOW - timedelta(hours=1)).date().isoformat()


def dft(control_id: str, *lines: str, case_id: str = "V-1", hospital: str = "H001") -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|HIS|{hospital}|DRGWATCH|DRGWATCH|{WHEN}||DFT^P03^DFT_P03|{control_id}|P|2.5",
            f"PV1|1|I|W3^301|||||||CARD|||||||||{case_id}|01",
            *lines,
        ]
    )


def ft1(
    set_id: int, transaction_id: str, item: str, quantity: str, extended: str, unit: str
) -> str:
    return (
        f"FT1|{set_id}|{transaction_id}||{WHEN}||CG|{item}|||{quantity}|{extended}|{unit}"
        "|CARD||||||||DR01^Li"
    )


STENT = ft1(1, "T-STENT", "HC01^Drug-eluting stent^CONS", "1", "8650.00", "8650.00")
ASPIRIN = ft1(2, "T-ASP", r"YP01^Aspirin \T\ clopidogrel^DRUG", "3", "", "12.3333")


def acks(body: str) -> list[dict[str, Any]]:
    """Each ACK's MSA code, acknowledged control id and ERR segments."""
    found: list[dict[str, Any]] = []
    for segment in body.rstrip("\r").split("\r"):
        fields = segment.split("|")
        if fields[0] == "MSA":
            found.append({"code": fields[1], "control_id": fields[2], "errors": []})
        elif fields[0] == "ERR":
            found[-1]["errors"].append(
                {
                    "location": fields[2],
                    "code": fields[3],
                    "severity": fields[4],
                    "reason": fields[8],
                }
            )
    return found


async def ledger(api: Api) -> list[dict[str, Any]]:
    rows = await api.rows("SELECT payload FROM ingest_ledger ORDER BY seq")
    return [orjson.loads(row.payload) for row in rows]


def case_total(events: list[dict[str, Any]], case_id: str) -> Decimal:
    """The case's total as the cost core computes it from the ledgered events."""
    state = new_case("H001", case_id)
    for event in events:
        if event["case_id"] == case_id:
            apply_event(state, parse_event(event), PriceBook(), datetime.now(UTC))
    return state.total_cost


async def dead_letters(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/dead-letters", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_an_accepted_dft_is_ledgered_and_moves_the_case_total(any_api: Api) -> None:
    before = case_total(await ledger(any_api), "V-1")
    response = await any_api.client.post("/v1/hl7", content=dft("M-1", STENT, ASPIRIN), headers=HL7)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("x-application/hl7-v2+er7")
    [ack] = acks(response.text)
    assert (ack["code"], ack["control_id"], ack["errors"]) == ("AA", "M-1", [])
    events = await ledger(any_api)
    assert [(e["event_id"], e["type"], e["amount"], e["unit_price"]) for e in events] == [
        ("T-STENT", "charge", "8650.00", "8650.00"),
        ("T-ASP", "charge", "37.00", "12.3333"),
    ]
    assert events[1]["item_name"] == "Aspirin & clopidogrel"
    assert events[0]["occurred_at"].endswith("+08:00")
    assert before == 0 and case_total(events, "V-1") == Decimal("8687.00")


async def test_a_message_sent_again_is_acknowledged_and_counted_once(any_api: Api) -> None:
    first = await any_api.client.post("/v1/hl7", content=dft("M-2", STENT), headers=HL7)
    again = await any_api.client.post("/v1/hl7", content=dft("M-2", STENT), headers=HL7)

    assert acks(first.text)[0]["code"] == acks(again.text)[0]["code"] == "AA"
    assert "already received" in acks(again.text)[0]["errors"][0]["reason"]
    assert len(await ledger(any_api)) == 1
    assert case_total(await ledger(any_api), "V-1") == Decimal("8650.00")


async def test_a_bad_amount_gets_ae_naming_the_field_and_a_dead_letter(any_api: Api) -> None:
    bad = ft1(1, "T-BAD", "HC01^Stent^CONS", "1", "8,650.00", "")
    response = await any_api.client.post(
        "/v1/hl7", content=dft("M-3", STENT.replace("|1|", "|2|", 1), bad), headers=HL7
    )

    assert response.status_code == 200, response.text
    [ack] = acks(response.text)
    assert ack["code"] == "AE"
    assert ack["errors"] == [
        {
            "location": "FT1^2^11^1^1",
            "code": "102^^HL70357",
            "severity": "E",
            "reason": "the extended amount '8,650.00' is not a number (digits and one '.')",
        }
    ]
    assert await ledger(any_api) == []  # the good line of the message is not half-applied
    [letter] = await dead_letters(any_api)
    assert letter["reason"].startswith("HL7 AE: FT1-11 (FT1 #2): the extended amount '8,650.00'")
    assert (letter["hospital_id"], letter["case_id"], letter["event_id"]) == ("H001", "V-1", "M-3")
    assert letter["payload"].startswith("MSH|^~\\&|HIS|H001|") and "T-BAD" in letter["payload"]


async def test_a_contract_refusal_names_the_hl7_field_it_came_from(any_api: Api) -> None:
    bad_id = ft1(1, "T 1/2", "HC01^Stent^CONS", "1", "10.00", "")
    response = await any_api.client.post("/v1/hl7", content=dft("M-4", bad_id), headers=HL7)

    [ack] = acks(response.text)
    assert ack["code"] == "AE"
    assert ack["errors"][0]["location"] == "FT1^1^2^1^1"
    assert ack["errors"][0]["reason"].startswith("event_id: must be 1 to 64 characters")
    assert await ledger(any_api) == []
    assert len(await dead_letters(any_api)) == 1


async def test_a_missing_visit_number_is_refused_and_kept(any_api: Api) -> None:
    response = await any_api.client.post(
        "/v1/hl7", content=dft("M-5", STENT, case_id=""), headers=HL7
    )
    [ack] = acks(response.text)
    assert (ack["code"], ack["errors"][0]["location"]) == ("AE", "PV1^1^19^1^1")
    [letter] = await dead_letters(any_api)
    assert "PV1-19" in letter["reason"] and letter["case_id"] is None


async def test_a_batch_is_answered_message_by_message(any_api: Api) -> None:
    a31 = "\r".join(
        [
            f"MSH|^~\\&|HIS|H001|DRGWATCH|DRGWATCH|{WHEN}||ADT^A31|M-A31|P|2.5",
            f"EVN|A31|{WHEN}",
            "PV1|1|I|W3|||||||CARD|||||||||V-1|01",
        ]
    )
    bad = dft("M-BAD", ft1(1, "T-X", "HC01^Stent^CONS", "1", "", ""))
    body = "\n".join(["BHS|^~\\&|HIS|H001|||||||B-77", dft("M-OK", STENT), bad, a31, "BTS|3"])
    response = await any_api.client.post("/v1/hl7", content=body, headers=HL7)

    assert response.status_code == 200, response.text
    lines = response.text.rstrip("\r").split("\r")
    assert lines[0].startswith("BHS|^~\\&|DRGWATCH|DRGWATCH|HIS|H001|") and lines[0].endswith(
        "|B-77"
    )
    assert lines[-1] == "BTS|3"
    assert [(ack["control_id"], ack["code"]) for ack in acks(response.text)] == [
        ("M-OK", "AA"),
        ("M-BAD", "AE"),
        ("M-A31", "AR"),
    ]
    assert [e["event_id"] for e in await ledger(any_api)] == ["T-STENT"]
    reasons = sorted(letter["reason"][:6] for letter in await dead_letters(any_api))
    assert reasons == ["HL7 AE", "HL7 AR"]


async def test_an_admission_and_a_discharge_with_a_drg(any_api: Api) -> None:
    pv1 = f"PV1|1|I|W3|||||||CARD|||||||||V-9|01{'|' * 24}{WHEN}"
    a01 = f"MSH|^~\\&|HIS|H001|DW|DW|{WHEN}||ADT^A01|M-A01|P|2.5\rEVN|A01|{WHEN}\r{pv1}"
    a03 = f"MSH|^~\\&|HIS|H001|DW|DW|{WHEN}||ADT^A03|M-A03|P|2.5\rEVN|A03|{WHEN}\r{pv1}\rDRG|FM15"
    for body in (a01, a03):
        response = await any_api.client.post("/v1/hl7", content=body, headers=HL7)
        assert acks(response.text)[0]["code"] == "AA", response.text
    assert [(e["event_id"], e["type"]) for e in await ledger(any_api)] == [
        ("M-A01:admitted", "admitted"),
        ("M-A03:discharged", "discharged"),
        ("M-A03:drg_assigned", "drg_assigned"),
    ]


async def test_an_a13_cancels_the_discharge_and_the_case_is_open_again(any_api: Api) -> None:
    admitted_at = (SHANGHAI_NOW - timedelta(hours=3)).strftime("%Y%m%d%H%M%S")
    discharged_at = (SHANGHAI_NOW - timedelta(hours=2)).strftime("%Y%m%d%H%M%S")
    pv1 = f"PV1|1|I|W3|||||||CARD|||||||||V-13|01{'|' * 24}{admitted_at}"
    a01 = f"MSH|^~\\&|HIS|H001|DW|DW|{admitted_at}||ADT^A01|M-A01|P|2.5\r{pv1}"
    a03 = (
        f"MSH|^~\\&|HIS|H001|DW|DW|{discharged_at}||ADT^A03|M-A03|P|2.5"
        f"\rEVN|A03|{discharged_at}\r{pv1}|{discharged_at}"
    )
    # EVN-4: the event reason; no PV1-45 any more
    a13 = f"MSH|^~\\&|HIS|H001|DW|DW|{WHEN}||ADT^A13^ADT_A01|M-A13|P|2.5\rEVN|A13|{WHEN}||01\r{pv1}"
    for body in (a01, a03, a13, a13):  # the A13 sent twice: acknowledged, recorded once
        response = await any_api.client.post("/v1/hl7", content=body, headers=HL7)
        assert acks(response.text)[0]["code"] == "AA", response.text
    events = await ledger(any_api)
    assert [(e["event_id"], e["type"]) for e in events] == [
        ("M-A01:admitted", "admitted"),
        ("M-A03:discharged", "discharged"),
        ("M-A13:discharge_cancelled", "discharge_cancelled"),
    ]
    assert events[2]["reason"] == "01"
    state = new_case("H001", "V-13")
    for event in events:
        apply_event(state, parse_event(event), PriceBook(), datetime.now(UTC))
    assert state.status == "open" and state.discharged_at is None
    assert await dead_letters(any_api) == []


async def test_a_body_that_is_not_hl7_is_refused_and_kept(any_api: Api) -> None:
    response = await any_api.client.post("/v1/hl7", content="PID|1||P1\r", headers=HL7)
    assert response.status_code == 422, response.text
    assert "before any MSH" in response.text
    [letter] = await dead_letters(any_api)
    assert letter["payload"] == "PID|1||P1\r" and "before any MSH" in letter["reason"]


async def test_text_plain_is_taken_and_json_is_not(any_api: Api) -> None:
    plain = await any_api.client.post(
        "/v1/hl7", content=dft("M-6", STENT), headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    assert plain.status_code == 200 and acks(plain.text)[0]["code"] == "AA"
    as_json = await any_api.client.post(
        "/v1/hl7", content=dft("M-7", STENT), headers={"Content-Type": "application/json"}
    )
    assert as_json.status_code == 415


async def test_a_message_in_gb18030_is_answered_in_it(any_api: Api) -> None:
    item = ft1(1, "T-GB", "YP9^阿莫西林胶囊^DRUG", "1", "5.00", "5.00")
    body = dft("M-GB", item).replace("|P|2.5", "|P|2.5|||||CHN|GB 18030-2000", 1)
    response = await any_api.client.post("/v1/hl7", content=body.encode("gb18030"), headers=HL7)
    assert response.headers["content-type"].endswith("charset=gb18030")
    assert acks(response.content.decode("gb18030"))[0]["code"] == "AA"
    assert (await ledger(any_api))[0]["item_name"] == "阿莫西林胶囊"


async def store_sample_chargemaster(api: Api) -> None:
    async with api.sessions() as db_session:
        assert await chargemaster_service.load_sample(db_session=db_session)
        await db_session.commit()


# in the sample chargemaster (a consumable; a drug), and in no chargemaster
SAMPLE_STENT = ft1(1, "T-CM-1", "C-STENT-IMP^Imported stent^LOCAL", "1", "11800.00", "")
ASPIRIN_AS_CONSUMABLE = ft1(2, "T-CM-2", "D-ASP100^Aspirin^CONS", "1", "0.04", "")
GAUZE = ft1(3, "T-CM-3", "X42^Gauze^LOCAL", "1", "3.00", "")


async def test_an_item_the_profile_leaves_uncategorised_takes_the_chargemasters_category(
    any_api: Api,
) -> None:
    await store_sample_chargemaster(any_api)
    body = dft("M-CM", SAMPLE_STENT, ASPIRIN_AS_CONSUMABLE, GAUZE)
    response = await any_api.client.post("/v1/hl7", content=body, headers=HL7)

    [ack] = acks(response.text)
    assert ack["code"] == "AA"
    assert [(e["location"], e["severity"], e["reason"]) for e in ack["errors"]] == [
        (
            "FT1^3^7^1^1",
            "W",
            "item X42 (coding system LOCAL) is in neither the profile's category mapping nor"
            f" the chargemaster in force for H001 on {SERVICE_DAY}: counted as other",
        )
    ]
    # the chargemaster's category; the profile's (CONS) over the chargemaster's (drug); other
    assert [(e["item_code"], e["category"]) for e in await ledger(any_api)] == [
        ("C-STENT-IMP", "consumable"),
        ("D-ASP100", "consumable"),
        ("X42", "other"),
    ]


async def test_a_chargemaster_imported_through_the_api_categorises_the_next_message(
    any_api: Api,
) -> None:
    first = await any_api.client.post("/v1/hl7", content=dft("M-CM-1", GAUZE), headers=HL7)
    assert acks(first.text)[0]["errors"][0]["severity"] == "W"
    imported = await any_api.client.post(
        "/v1/chargemasters",
        json={
            "name": "H001 2026",
            "valid_from": "2026-01-01",
            "hospital_id": "H001",
            "items": [
                {"item_code": "X42", "name": "纱布", "category": "consumable", "unit_price": "3.00"}
            ],
        },
    )
    assert imported.status_code == 201, imported.text
    # within the second the API trusts its charge book: the import itself made it forget
    again = GAUZE.replace("T-CM-3", "T-CM-4")
    second = await any_api.client.post("/v1/hl7", content=dft("M-CM-2", again), headers=HL7)
    assert acks(second.text)[0]["errors"] == []
    assert [e["category"] for e in await ledger(any_api)] == ["other", "consumable"]
