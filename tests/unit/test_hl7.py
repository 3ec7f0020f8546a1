"""HL7 v2 messages to contract v1 events: reading, profiles, mapping and ACKs (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.casecost.chargemaster import ChargeBook
from services.casecost.events import Category, parse_event
from services.ingest.hl7.acks import build_ack, wrap_batch
from services.ingest.hl7.er7 import Message, segment_lines, split_submission
from services.ingest.hl7.exceptions import Hl7Unreadable, ProfilesRefused
from services.ingest.hl7.intake import Reading, read_submission
from services.ingest.hl7.mapping import Mapped, hl7_time, map_message
from services.ingest.hl7.profile import DEFAULT_PROFILES_DIR, Categories, Profiles, load_profiles
from tests.unit.chargemaster_samples import sample_charge_book

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROFILES = load_profiles()
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
NO_CHARGEMASTER = ChargeBook()
SAMPLE_BOOK = sample_charge_book()

MSH = r"MSH|^~\&|HIS|H001|DRGWATCH|DRGWATCH|20261201083000+0800||DFT^P03^DFT_P03|{id}|P|2.5"
PV1 = "PV1|1|I|W3^301^2^H001|||||||CARD|||||||||V2026-0001^^^H001^VN|01"
PV1_FIELDS_BEFORE_19 = "PV1|1|I|W3^301^2^H001|||||||CARD|||||||||"


def message(*segments: str, control_id: str = "MSG0001", separator: str = "\r") -> str:
    return separator.join([MSH.format(id=control_id), *segments])


def ft1(
    set_id: int = 1,
    transaction_id: str = "T-1",
    when: str = "20261201080000",
    kind: str = "CG",
    item: str = "YP001^Aspirin 100mg^DRUG",
    quantity: str = "2",
    extended: str = "25.00",
    unit: str = "12.50",
    department: str = "CARD^Cardiology",
    ordered_by: str = "DR01^Li^Wei",
) -> str:
    fields = [""] * 22
    fields[1], fields[2], fields[4], fields[6], fields[7] = (
        str(set_id),
        transaction_id,
        when,
        kind,
        item,
    )
    fields[10], fields[11], fields[12], fields[13] = quantity, extended, unit, department
    fields[21] = ordered_by
    return "FT1" + "|".join(fields)


def mapped(
    text: str, profiles: Any = PROFILES, charge_book: ChargeBook = NO_CHARGEMASTER
) -> Mapped:
    message = Message.read("\r".join(segment_lines(text)), "utf-8")
    return map_message(message, profiles, SHANGHAI, charge_book)


def events(
    text: str, profiles: Any = PROFILES, charge_book: ChargeBook = NO_CHARGEMASTER
) -> list[dict[str, Any]]:
    result = mapped(text, profiles, charge_book)
    assert result.refusal is None, result.problems
    for event in result.events:
        parse_event(event.event)  # every mapped event is a valid contract v1 event
    return [event.event for event in result.events]


def refusal(text: str, profiles: Any = PROFILES) -> tuple[str | None, list[str]]:
    result = mapped(text, profiles)
    return result.refusal, [str(problem) for problem in result.problems]


# --- DFT: charges and credits ----------------------------------------------------------


def test_a_dft_line_becomes_a_charge_with_every_field_in_place() -> None:
    [charge] = events(message(PV1, ft1()))
    assert charge == {
        "event_id": "T-1",
        "type": "charge",
        "hospital_id": "H001",
        "case_id": "V2026-0001",
        "occurred_at": "2026-12-01T08:00:00+08:00",
        "department": "CARD",
        "item_code": "YP001",
        "item_name": "Aspirin 100mg",
        "category": "drug",
        "quantity": "2",
        "unit_price": "12.50",
        "amount": "25.00",
        "ordered_by": "DR01",
    }


def test_p11_lines_map_as_p03_lines_do() -> None:
    text = message(PV1, ft1()).replace("DFT^P03^DFT_P03", "DFT^P11^DFT_P11")
    assert events(text) == events(message(PV1, ft1()))


def test_segment_separators_cr_crlf_and_lf_read_alike() -> None:
    segments = (PV1, ft1(), ft1(2, "T-2"))
    expected = events(message(*segments))
    assert events(message(*segments, separator="\n")) == expected
    assert events(message(*segments, separator="\r\n")) == expected
    assert len(split_submission(message(*segments, separator="\n").encode()).messages) == 1


def test_escape_sequences_are_undone_in_names() -> None:
    item = r"YP002^Vitamin B\T\C \F\ 10\S\20 \E\ tablets\X2E\^DRUG"
    [charge] = events(message(PV1, ft1(item=item)))
    assert charge["item_name"] == r"Vitamin B&C | 10^20 \ tablets."


def test_hex_escapes_are_decoded_in_the_message_charset() -> None:
    # 阿司匹林 as UTF-8 bytes written in hex
    item = r"YP003^\XE998BFE58FB8E58CB9E69E97\^DRUG"
    [charge] = events(message(PV1, ft1(item=item)))
    assert charge["item_name"] == "阿司匹林"


def test_other_encoding_characters_declared_in_msh_2() -> None:
    # field | component $ repetition * escape / subcomponent %
    text = "\r".join(
        [
            "MSH|$*/%|HIS|H001|DRGWATCH|DRGWATCH|20261201083000+0800||DFT$P03|M-ENC|P|2.5",
            "PV1|1|I|W3$301|||||||CARD|||||||||V-77$$$H001$VN",
            "FT1|1|T-ENC||20261201080000||CG|LAB1$Blood /S/ count /T/ more$LAB|||1|35.00"
            "|35.00%CNY|CARD||||||||DR9$Wu",
        ]
    )
    [charge] = events(text)
    assert (charge["case_id"], charge["item_code"], charge["category"]) == ("V-77", "LAB1", "lab")
    assert charge["item_name"] == "Blood $ count % more"
    assert charge["amount"] == "35.00" and charge["ordered_by"] == "DR9"


def test_the_first_non_empty_repetition_is_read() -> None:
    [charge] = events(message(PV1, ft1(ordered_by="~DR02^Wang~DR03^Zhao")))
    assert charge["ordered_by"] == "DR02"


def test_without_a_transaction_id_the_event_id_is_the_control_id_and_set_id() -> None:
    charges = events(message(PV1, ft1(1, ""), ft1(2, ""), control_id="CTL-9"))
    assert [charge["event_id"] for charge in charges] == ["CTL-9:1", "CTL-9:2"]


def test_extended_amount_from_the_unit_amount_and_quantity_exactly() -> None:
    [charge] = events(message(PV1, ft1(quantity="3", extended="", unit="0.3333")))
    assert (charge["unit_price"], charge["amount"]) == ("0.3333", "1.00")
    assert Decimal(charge["amount"]) == (3 * Decimal("0.3333")).quantize(Decimal("0.01"))


def test_unit_amount_from_the_extended_amount_when_it_divides() -> None:
    [charge] = events(message(PV1, ft1(quantity="4", extended="10.00", unit="")))
    assert (charge["quantity"], charge["unit_price"], charge["amount"]) == ("4", "2.5", "10.00")


def test_unit_amount_to_four_places_when_it_gives_the_extended_amount_back() -> None:
    [charge] = events(message(PV1, ft1(quantity="3", extended="100.00", unit="")))
    assert (charge["unit_price"], charge["amount"]) == ("33.3333", "100.00")


def test_an_extended_amount_no_four_place_unit_gives_back_is_refused() -> None:
    code, problems = refusal(message(PV1, ft1(quantity="3000", extended="1.00", unit="")))
    assert code == "AE"
    assert problems[0].startswith("FT1-11: the extended amount 1.00 divided by the quantity 3000")


def test_amounts_that_disagree_are_refused_naming_ft1_11() -> None:
    code, problems = refusal(message(PV1, ft1(quantity="2", extended="30.00", unit="12.50")))
    assert code == "AE"
    assert problems == [
        "FT1-11: the extended amount 30.00 != quantity x unit amount (2 x 12.50 = 25.00)"
    ]


@pytest.mark.parametrize("amount", ["12,50", "1.2e3", "CNY 12.50", "12.5.0"])
def test_an_amount_that_is_not_a_number_is_refused(amount: str) -> None:
    code, problems = refusal(message(PV1, ft1(quantity="1", extended=amount, unit="")))
    assert code == "AE"
    assert problems == [
        f"FT1-11: the extended amount {amount!r} is not a number (digits and one '.')"
    ]


def test_a_bad_amount_in_the_second_line_names_that_line() -> None:
    code, problems = refusal(message(PV1, ft1(), ft1(2, "T-2", unit="abc", extended="")))
    assert code == "AE"
    assert problems[0].startswith("FT1-12 (FT1 #2): the unit amount 'abc'")


def test_a_credit_keeps_the_sizes_of_negative_values() -> None:
    [credit] = events(message(PV1, ft1(kind="CD", quantity="-1", extended="-12.50", unit="12.50")))
    assert (credit["type"], credit["quantity"], credit["amount"]) == ("credit", "1", "12.50")


def test_a_negative_charge_is_a_credit_and_the_ack_notes_it() -> None:
    result = mapped(message(PV1, ft1(quantity="-2")))
    assert [event.event["type"] for event in result.events] == ["credit"]
    assert any("counted as a credit" in str(note) for note in result.notes)


def test_payments_are_skipped_with_a_note_and_adjustments_refused() -> None:
    result = mapped(message(PV1, ft1(), ft1(2, "T-PAY", kind="PY")))
    assert [event.event["event_id"] for event in result.events] == ["T-1"]
    assert [str(note) for note in result.notes] == [
        "FT1-6 (FT1 #2): transaction type PY is not a case cost: not counted"
    ]
    code, problems = refusal(message(PV1, ft1(kind="AJ")))
    assert code == "AE" and problems[0].startswith("FT1-6: transaction type 'AJ' is not taken")


def test_an_unknown_category_is_other_with_a_note() -> None:
    for book in (NO_CHARGEMASTER, SAMPLE_BOOK):
        result = mapped(message(PV1, ft1(item="X42^Gauze^LOCALCODES")), charge_book=book)
        assert result.events[0].event["category"] == "other"
        assert [str(note) for note in result.notes] == [
            "FT1-7: item X42 (coding system LOCALCODES) is in neither the profile's category"
            " mapping nor the chargemaster in force for H001 on 2026-12-01: counted as other"
        ]


def test_an_item_the_profile_does_not_categorise_takes_the_chargemasters_category() -> None:
    text = message(
        PV1,
        ft1(1, "T-1", item="C-STENT-IMP^Imported stent^LOCALCODES", quantity="1", unit=""),
        ft1(2, "T-2", item="L-CTNT^Troponin T", quantity="1", unit=""),
    )
    result = mapped(text, charge_book=SAMPLE_BOOK)
    assert [e.event["category"] for e in result.events] == ["consumable", "lab"]
    assert result.notes == []


def test_the_profiles_category_wins_over_the_chargemasters() -> None:
    # the sample lists D-ASP100 as a drug; the sender's coding system says consumable
    text = message(PV1, ft1(item="D-ASP100^Aspirin^CONS"))
    assert events(text, charge_book=SAMPLE_BOOK)[0]["category"] == "consumable"
    default = PROFILES.for_sender("H001", "HIS")
    assert default is not None
    prefixed = default.model_copy(
        update={"categories": Categories(code_prefixes={"D-": Category.EXAM})}
    )
    by_prefix = Profiles(profiles=(prefixed,))
    text = message(PV1, ft1(item="D-ASP100^Aspirin"))
    assert events(text, by_prefix, charge_book=SAMPLE_BOOK)[0]["category"] == "exam"


def test_the_chargemaster_is_the_one_in_force_on_the_charges_local_day() -> None:
    book = sample_charge_book(valid_from=date(2026, 12, 2))
    # 2026-12-01 17:00 UTC is 01:00 on 2 December in Shanghai: the chargemaster is in force
    after = message(PV1, ft1(item="P-PCI^PCI", when="20261201170000+0000"))
    assert events(after, charge_book=book)[0]["category"] == "procedure"
    # 15:00 UTC is still 1 December there: not yet
    before = mapped(
        message(PV1, ft1(item="P-PCI^PCI", when="20261201150000+0000")), charge_book=book
    )
    assert before.events[0].event["category"] == "other"
    assert "nor the chargemaster in force for H001 on 2026-12-01" in str(before.notes[0])


def test_a_missing_visit_number_is_refused_naming_pv1_19() -> None:
    code, problems = refusal(message(PV1_FIELDS_BEFORE_19, ft1()))
    assert code == "AE"
    assert problems == ["PV1-19: the visit number (the case) is missing (read from PV1-19)"]
    # and with no PV1 segment at all
    code, problems = refusal(message(ft1()))
    assert (code, problems[0][:6]) == ("AE", "PV1-19")


def test_a_dft_without_ft1_is_refused() -> None:
    code, problems = refusal(message(PV1))
    assert code == "AE" and "at least one FT1" in problems[0]


def test_invalid_identifiers_are_left_to_the_contract_with_their_source() -> None:
    # the mapping passes them on; the ingest core refuses them naming the HL7 field
    result = mapped(message(PV1, ft1(transaction_id="T 1/2")))
    assert result.refusal is None
    assert str(result.events[0].sources["event_id"]) == "FT1-2"


# --- times -----------------------------------------------------------------------------


def test_times_without_an_offset_are_in_the_hospitals_zone() -> None:
    assert hl7_time("20261201083000", None, SHANGHAI) == "2026-12-01T08:30:00+08:00"
    assert hl7_time("202612010830-0500", None, SHANGHAI) == "2026-12-01T08:30:00-05:00"
    assert hl7_time("20261201", None, SHANGHAI) == "2026-12-01T00:00:00+08:00"
    assert hl7_time("20261201083000.25+0800", None, SHANGHAI) == "2026-12-01T08:30:00.250000+08:00"


@pytest.mark.parametrize("text", ["2026-12-01", "20261301", "2026120125", "yesterday"])
def test_times_that_are_not_hl7_times_are_refused(text: str) -> None:
    code, problems = refusal(message(PV1, ft1(when=text)))
    assert code == "AE" and problems[0].startswith("FT1-4:")


# --- ADT -------------------------------------------------------------------------------

ADT = r"MSH|^~\&|HIS|H001|DRGWATCH|DRGWATCH|20261201090000+0800||ADT^{trigger}^ADT_A01|{id}|P|2.5"


def adt(trigger: str, *segments: str, control_id: str = "ADT-1") -> str:
    return "\r".join([ADT.format(trigger=trigger, id=control_id), *segments])


PV1_ADMIT = (
    "PV1|1|I|W3^301^2|||||||CARD|||||||||V2026-0001|02" + "|" * 24 + "20261201073000|20261205100000"
)


def test_a01_admits_with_department_scheme_drg_and_admission_time() -> None:
    [admitted] = events(adt("A01", "EVN|A01|20261201090000", PV1_ADMIT, "DRG|FM15^Coronary stent"))
    assert admitted == {
        "event_id": "ADT-1:admitted",
        "type": "admitted",
        "hospital_id": "H001",
        "case_id": "V2026-0001",
        "occurred_at": "2026-12-01T09:00:00+08:00",
        "department": "CARD",
        "insurance_scheme": "02",
        "drg_code": "FM15",
        "admitted_at": "2026-12-01T07:30:00+08:00",
    }


def test_a02_transfers_and_a03_discharges_with_the_final_drg() -> None:
    [transferred] = events(adt("A02", PV1_ADMIT.replace("|CARD|", "|SURG|"), control_id="A-2"))
    assert (transferred["type"], transferred["department"]) == ("transferred", "SURG")
    discharge = events(adt("A03", PV1_ADMIT, "DG1|1||I25.1^CAD^I10|||||FM19", control_id="A-3"))
    assert [(e["type"], e["event_id"]) for e in discharge] == [
        ("discharged", "A-3:discharged"),
        ("drg_assigned", "A-3:drg_assigned"),
    ]
    assert discharge[0]["discharged_at"] == "2026-12-05T10:00:00+08:00"
    assert discharge[1]["drg_code"] == "FM19"


def test_a08_updates_department_and_drg() -> None:
    update = events(adt("A08", PV1_ADMIT, "DRG|FM15"))
    assert [e["type"] for e in update] == ["transferred", "drg_assigned"]


def test_a13_cancels_the_discharge_at_the_event_time_with_its_reason() -> None:
    [cancelled] = events(
        adt("A13", "EVN|A13|20261205113000||02", PV1_ADMIT.replace("20261205100000", ""))
    )
    assert cancelled == {
        "hospital_id": "H001",
        "case_id": "V2026-0001",
        "event_id": "ADT-1:discharge_cancelled",
        "type": "discharge_cancelled",
        "occurred_at": "2026-12-05T11:30:00+08:00",
        "reason": "02",
    }
    # no EVN: the message time, no reason; a DRG in the message is regrouped as for A03
    plain = events(adt("A13", PV1_ADMIT, "DRG|FM15", control_id="A-13"))
    assert [(e["type"], e["event_id"]) for e in plain] == [
        ("discharge_cancelled", "A-13:discharge_cancelled"),
        ("drg_assigned", "A-13:drg_assigned"),
    ]
    assert plain[0]["occurred_at"] == "2026-12-01T09:00:00+08:00"
    assert "reason" not in plain[0]


def test_an_a13_without_a_visit_number_is_refused_naming_the_field() -> None:
    code, problems = refusal(adt("A13", "EVN|A13|20261205113000", "PV1|1|I|W3"))
    assert code == "AE"
    assert problems[0].startswith("PV1-19: the visit number (the case) is missing")


def test_unsupported_messages_are_rejected() -> None:
    assert refusal(adt("A31", PV1_ADMIT))[0] == "AR"
    oru = ADT.format(trigger="R01", id="X").replace("ADT^R01", "ORU^R01")
    code, problems = refusal("\r".join([oru, PV1_ADMIT]))
    assert code == "AR" and problems[0].startswith("MSH-9: message type ORU is not taken")


def test_an_admission_without_a_scheme_is_refused_by_the_default_profile() -> None:
    code, problems = refusal(adt("A01", PV1_ADMIT.replace("|V2026-0001|02|", "|V2026-0001||")))
    assert code == "AE" and problems[0].startswith("PV1-20: the financial class")


# --- a vendor's variant ----------------------------------------------------------------

VENDOR = "\n".join(
    [
        r"MSH|^~\&|BILLING|EXAMPLE-HIS|DRGWATCH|DRGWATCH|20261201083000||DFT^P03|V-100|P|2.4",
        "PID|1||P9||Li^Si|||||||||||||V-CASE-9",
        "PV1|1|I|ICU^12",
        "ZDR|1|FM15^Coronary stent",
        "FT1|1|||20261201101500||CG|||||100.00||^ICU1||||||||||||HC0042^Stent^HC",
        "FT1|2|||20261201101600||CG|3100^CT^LOCAL|||2|360.00||^ICU1",
    ]
)


def test_a_vendor_profile_reads_its_own_positions() -> None:
    profiles = load_profiles(DEFAULT_PROFILES_DIR)
    charges = events(VENDOR, profiles)
    assert [
        (c["hospital_id"], c["case_id"], c["item_code"], c["category"], c["department"])
        for c in charges
    ] == [
        ("H001", "V-CASE-9", "HC0042", "consumable", "ICU1"),
        ("H001", "V-CASE-9", "3100", "exam", "ICU1"),
    ]
    assert charges[0]["event_id"] == "V-100:1"
    assert (charges[1]["unit_price"], charges[1]["amount"]) == ("180", "360.00")
    assert charges[0]["occurred_at"] == "2026-12-01T10:15:00+08:00"


# --- profiles --------------------------------------------------------------------------


def test_the_shipped_profiles_load_and_the_most_specific_wins() -> None:
    assert {p.name for p in PROFILES.profiles} == {"default", "vendor-example"}
    assert PROFILES.for_sender("EXAMPLE-HIS", "ANY").name == "vendor-example"  # type: ignore[union-attr]
    assert PROFILES.for_sender("OTHER", "ANY").name == "default"  # type: ignore[union-attr]


def test_an_invalid_profile_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text(
        "version: 1\nname: site\nfields:\n  case_id: [PV1/19]\n"
        "categories:\n  coding_systems: {X: food}\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfilesRefused) as refused:
        load_profiles(tmp_path)
    message_text = refused.value.message
    assert f"{bad}: fields.case_id: 'PV1/19' is not a location" in message_text
    assert f"{bad}: categories.coding_systems.X:" in message_text


def test_two_profiles_for_one_sender_are_refused(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(f"version: 1\nname: {name}\n", encoding="utf-8")
    with pytest.raises(ProfilesRefused, match="already read by"):
        load_profiles(tmp_path)


def test_a_facility_without_a_profile_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "only.yaml").write_text(
        "version: 1\nname: only\nsending_facility: H009\n", encoding="utf-8"
    )
    code, problems = refusal(message(PV1, ft1()), load_profiles(tmp_path))
    assert code == "AR" and problems[0].startswith("MSH-4: no HL7 profile reads sending facility")


def test_a_hospital_map_translates_the_facility(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(
        'version: 1\nname: map\nhospitals: {"H001": "HOSP-A"}\n', encoding="utf-8"
    )
    [charge] = events(message(PV1, ft1()), load_profiles(tmp_path))
    assert charge["hospital_id"] == "HOSP-A"


# --- submissions and batches -----------------------------------------------------------


def test_a_batch_file_is_split_into_its_messages() -> None:
    body = "\r\n".join(
        [
            r"FHS|^~\&|HIS|H001|||20261201||||F-1",
            r"BHS|^~\&|HIS|H001|||20261201||||B-1",
            message(PV1, ft1(), control_id="M1"),
            message(PV1, ft1(2, "T-2"), control_id="M2"),
            "BTS|2",
            "FTS|1",
        ]
    )
    submission = split_submission(body.encode())
    assert len(submission.messages) == 2
    assert submission.file_header and submission.file_header.endswith("F-1")
    assert all(text.startswith("MSH") and "BTS" not in text for text in submission.messages)


def test_a_batch_cut_short_is_refused_whole() -> None:
    body = "\r".join([r"BHS|^~\&|HIS|H001", message(PV1, ft1()), "BTS|3"])
    with pytest.raises(Hl7Unreadable, match="BTS-1 counts 3 messages but 1 arrived"):
        split_submission(body.encode())
    two_batches = "\r".join([r"FHS|^~\&", r"BHS|^~\&", message(PV1, ft1()), "BTS|1", "FTS|2"])
    with pytest.raises(Hl7Unreadable, match="FTS-1 counts 2 batches but 1 arrived"):
        split_submission(two_batches.encode())


@pytest.mark.parametrize("body", [b"", b"hello", b"PID|1||P1\rPV1|1", b'{"event_id": "x"}'])
def test_a_body_that_is_not_hl7_is_refused(body: bytes) -> None:
    with pytest.raises(Hl7Unreadable):
        split_submission(body)


def test_msh_18_names_the_charset_of_the_body() -> None:
    text = message(PV1, ft1(item="YP9^阿莫西林^DRUG")).replace(
        "|P|2.5", "|P|2.5|||||CHN|GB 18030-2000"
    )
    submission, [reading] = read_submission(
        text.encode("gb18030"),
        declared_charset=None,
        profiles=PROFILES,
        zone=SHANGHAI,
        charge_book=NO_CHARGEMASTER,
    )
    assert submission.charset == "gb18030"
    assert reading.mapped.events[0].event["item_name"] == "阿莫西林"
    with pytest.raises(Hl7Unreadable, match="not valid utf-8"):
        split_submission(text.replace("GB 18030-2000", "UNICODE UTF-8").encode("gb18030"))


# --- ACKs ------------------------------------------------------------------------------


def ack_segments(text: str) -> list[list[str]]:
    return [segment.split("|") for segment in text.rstrip("\r").split("\r")]


def test_an_accepted_message_is_acknowledged_aa_with_its_notes() -> None:
    text = message(PV1, ft1(item="X42^Gauze^LOCALCODES"), control_id="C-77")
    msg = Message.read(text, "utf-8")
    result = map_message(msg, PROFILES, SHANGHAI, NO_CHARGEMASTER)
    msh, msa, err = ack_segments(build_ack(msg, "AA", problems=[], notes=result.notes, now=NOW))
    assert msh[:6] == ["MSH", r"^~\&", "DRGWATCH", "DRGWATCH", "HIS", "H001"]
    assert (msh[6], msh[8], msh[11]) == ("20261201040000+0000", "ACK^P03^ACK", "2.5")
    assert msa[:3] == ["MSA", "AA", "C-77"]
    assert (err[2], err[3], err[4]) == ("FT1^1^7^1^1", "0^^HL70357", "W")


def test_an_error_ack_names_segment_field_code_and_reason_escaped() -> None:
    text = message(PV1, ft1(quantity="1", extended=r"12\F\50", unit=""))
    msg = Message.read(text, "utf-8")
    result = map_message(msg, PROFILES, SHANGHAI, NO_CHARGEMASTER)
    ack = build_ack(msg, "AE", problems=result.problems, notes=[], now=NOW)
    msh, msa, err = ack_segments(ack)
    assert msa[:2] == ["MSA", "AE"]
    assert (err[2], err[3], err[4]) == ("FT1^1^11^1^1", "102^^HL70357", "E")
    assert err[8] == r"the extended amount '12\F\50' is not a number (digits and one '.')"


def test_an_ack_uses_the_messages_encoding_characters() -> None:
    text = "\r".join(
        [
            "MSH#$*/%#HIS#H001#DW#DW#20261201##ADT$A31#Z-1#P#2.3",
            "PV1#1#I#W3##########CARD##########V-1",
        ]
    )
    msg = Message.read(text, "utf-8")
    result = map_message(msg, PROFILES, SHANGHAI, NO_CHARGEMASTER)
    ack = build_ack(msg, "AR", problems=result.problems, notes=[], now=NOW)
    assert ack.startswith("MSH#$*/%#DRGWATCH#DRGWATCH#HIS#H001#")
    assert "#ACK$A31$ACK#" in ack and "\rMSA#AR#Z-1#" in ack
    assert "\rERR##MSH$1$9$1$2#201$$HL70357#E#" in ack


def test_a_batch_of_acks_is_wrapped_in_bhs_and_bts() -> None:
    acks = ["MSH|^~\\&|A\rMSA|AA|1\r", "MSH|^~\\&|A\rMSA|AE|2\r"]
    wrapped = wrap_batch(
        acks, file_header=None, batch_header="BHS|^~\\&|HIS|H001|||||||B-9", now=NOW
    )
    lines = wrapped.rstrip("\r").split("\r")
    assert lines[0].startswith("BHS|^~\\&|DRGWATCH|DRGWATCH|HIS|H001|")
    assert lines[0].endswith("|B-9") and lines[-1] == "BTS|2"
    assert [line[:7] for line in lines[1:-1]] == ["MSH|^~\\", "MSA|AA|", "MSH|^~\\", "MSA|AE|"]


def test_an_unreadable_message_in_a_batch_still_gets_an_ar() -> None:
    body = "\r".join([message(PV1, ft1(), control_id="OK1"), "MSH"]).encode()
    _, readings = read_submission(
        body, declared_charset=None, profiles=PROFILES, zone=SHANGHAI, charge_book=NO_CHARGEMASTER
    )
    assert [r.mapped.refusal for r in readings] == [None, "AR"]
    broken: Reading = readings[1]
    ack = build_ack(broken.message, "AR", problems=broken.mapped.problems, notes=[], now=NOW)
    assert "\rMSA|AR|" in ack


# --- whatever arrives ------------------------------------------------------------------


@pytest.mark.parametrize("header", ["MSH|^~\\~|HIS", "MSH|^~a&|HIS", "MSH|^~|HIS", "MSH"])
def test_encoding_characters_that_cannot_work_are_refused(header: str) -> None:
    with pytest.raises(Hl7Unreadable, match="MSH"):
        Message.read(header + "|H001|DW|DW|20261201||DFT^P03|M|P|2.5", "utf-8")


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=400),
            st.sampled_from(list("|^~\\&\r\nMSHFTPV019.-+ X\x0b\x1cE")),
            st.sampled_from(["set", "insert", "delete"]),
        ),
        max_size=8,
    ),
    cut=st.integers(min_value=0, max_value=400),
)
def test_any_damaged_message_is_answered_never_crashes(
    edits: list[tuple[int, str, str]], cut: int
) -> None:
    text = list(message(PV1, ft1(item=r"YP1^A\T\B\X41\^DRUG"), ft1(2, "T-2")))
    for position, character, how in edits:
        at = min(position, len(text) - 1)
        if how == "set" and text:
            text[at] = character
        elif how == "insert":
            text.insert(at, character)
        elif text:
            del text[at]
    body = "".join(text)[: max(cut, 10)].encode()
    try:
        _, readings = read_submission(
            body,
            declared_charset=None,
            profiles=PROFILES,
            zone=SHANGHAI,
            charge_book=NO_CHARGEMASTER,
        )
    except Hl7Unreadable:
        return
    for reading in readings:
        code = reading.mapped.refusal or "AA"
        ack = build_ack(reading.message, code, problems=reading.mapped.problems, notes=[], now=NOW)
        assert f"MSA{ack[3]}{code}" in ack


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.integers(min_value=1, max_value=500),
    unit=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4),
)
def test_money_from_either_amount_is_exact_and_agrees_with_the_contract(
    quantity: int, unit: Decimal
) -> None:
    extended = (quantity * unit).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    [from_unit] = events(message(PV1, ft1(quantity=str(quantity), extended="", unit=str(unit))))
    assert Decimal(from_unit["amount"]) == extended
    assert Decimal(from_unit["unit_price"]) == unit
    result = mapped(message(PV1, ft1(quantity=str(quantity), extended=str(extended), unit="")))
    if result.refusal is None:
        [charge] = [event.event for event in result.events]
        parse_event(charge)  # the contract's own check: amount = quantity x unit_price
        assert Decimal(charge["amount"]) == extended
    else:  # no unit price of 4 places gives this amount back: refused, never rounded away
        assert "has no unit price of at most 4 decimal places" in str(result.problems[0])
