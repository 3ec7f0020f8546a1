"""`drgwatch feed` files and Kafka intake records, read without a broker or database."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import orjson
import pytest

from services.casecost.events import parse_event
from services.ingest.exceptions import PayloadRejected
from services.ingest.hl7.profile import load_profiles
from services.ingest.intake.files import (
    CSV_COLUMNS,
    FileEvent,
    FileMessage,
    FileUnreadable,
    LineProblem,
    guess_format,
    read_csv,
    read_file,
    read_ndjson,
)
from services.ingest.intake.records import (
    EventOutcome,
    HospitalScope,
    IntakeRecord,
    read_record,
    record_result,
    scope_refusal,
    source_of,
)
from services.validation import FieldError

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHARGE = {
    "event_id": "C-1",
    "type": "charge",
    "hospital_id": "H001",
    "case_id": "V-1",
    "occurred_at": "2026-12-01T08:00:00+08:00",
    "department": "CARD",
    "item_code": "HC01",
    "item_name": "Stent",
    "category": "consumable",
    "quantity": "2",
    "unit_price": "12.50",
    "amount": "25.00",
}
ADMITTED = {
    "event_id": "A-1",
    "type": "admitted",
    "hospital_id": "H001",
    "case_id": "V-1",
    "occurred_at": "2026-12-01T07:00:00+08:00",
    "department": "CARD",
    "drg_code": "FM15",
    "insurance_scheme": "employee",
    "admitted_at": "2026-12-01T07:00:00+08:00",
}


def test_ndjson_reads_one_object_a_line_and_names_the_lines_it_cannot_read() -> None:
    text = "\n".join(
        [orjson.dumps(ADMITTED).decode(), "", "{not json", "[1, 2]", orjson.dumps(CHARGE).decode()]
    )
    reads = list(read_ndjson(text))
    assert [type(read) for read in reads] == [FileEvent, LineProblem, LineProblem, FileEvent]
    assert [read.line for read in reads] == [1, 3, 4, 5]
    assert reads[0] == FileEvent(1, ADMITTED)
    assert str(reads[1]).startswith("line 3: not JSON")
    assert str(reads[2]) == "line 4: not a JSON object (one event a line)"
    assert isinstance(reads[3], FileEvent) and reads[3].key == b"H001/V-1"


def test_csv_columns_are_the_contract_fields_and_empty_cells_are_absent_fields() -> None:
    header = ",".join(CSV_COLUMNS)

    def row(event: dict[str, str]) -> str:
        return ",".join(event.get(name, "") for name in CSV_COLUMNS)

    text = "\n".join([header, row(ADMITTED), row(CHARGE), "C-9,charge,H001", ""])
    reads = list(read_csv(text))
    assert reads[0] == FileEvent(2, ADMITTED)
    assert reads[1] == FileEvent(3, CHARGE)
    assert reads[2] == LineProblem(4, f"3 cells where the header has {len(CSV_COLUMNS)}")
    # what the CSV gives is a contract v1 event as it is
    for read in reads[:2]:
        assert isinstance(read, FileEvent)
        parse_event(read.event)


def test_csv_carries_a_cancelled_discharge_with_its_reason() -> None:
    text = (
        "event_id,type,hospital_id,case_id,occurred_at,reason\n"
        "U-1,discharge_cancelled,H001,V-1,2026-12-01T09:00:00+08:00,wrong patient\n"
    )
    [read] = list(read_csv(text))
    assert isinstance(read, FileEvent)
    assert parse_event(read.event).type == "discharge_cancelled"
    assert read.event["reason"] == "wrong patient"


def test_csv_takes_any_order_and_subset_of_columns_with_a_quoted_name() -> None:
    text = (
        "case_id,hospital_id,type,event_id,occurred_at,department\n"
        'V-2,H001,transferred,T-1,2026-12-01T09:00:00+08:00,"ICU"\n'
    )
    assert list(read_csv(text)) == [
        FileEvent(
            2,
            {
                "case_id": "V-2",
                "hospital_id": "H001",
                "type": "transferred",
                "event_id": "T-1",
                "occurred_at": "2026-12-01T09:00:00+08:00",
                "department": "ICU",
            },
        )
    ]


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("event_id,type,hospital_id,case_id,occurred_at,price", "unknown columns price"),
        ("event_id,type,hospital_id,occurred_at", "missing columns case_id"),
        ("event_id,type,hospital_id,case_id,occurred_at,type", "repeated columns type"),
    ],
)
def test_a_csv_header_that_is_not_contract_fields_refuses_the_file(header: str, said: str) -> None:
    with pytest.raises(FileUnreadable, match=said):
        list(read_csv(header + "\n"))


def test_an_empty_csv_or_a_file_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(FileUnreadable, match="empty"):
        list(read_csv(""))
    with pytest.raises(FileUnreadable, match="not UTF-8"):
        read_file(b"\xff\xfe{}", "ndjson", profiles=None, zone=SHANGHAI)


def test_hl7_batch_file_maps_each_message_and_names_the_messages_it_cannot_map() -> None:
    msh = r"MSH|^~\&|HIS|H001|DRGWATCH|DRGWATCH|20261201083000+0800||DFT^P03|{id}|P|2.5"
    pv1 = "PV1|1|I|W3|||||||CARD|||||||||V-7|01"
    ft1 = "FT1|1|{id}-1||20261201080000||CG|HC01^Stent^CONS|||2|25.00|12.50|CARD||||||||DR01"
    good = "\r\n".join([msh.format(id="M1"), pv1, ft1.format(id="M1")])
    bad = "\r\n".join([msh.format(id="M2"), "PV1|1|I|W3|||||||CARD", ft1.format(id="M2")])
    text = "\r\n".join(["FHS|^~\\&", "BHS|^~\\&", good, bad, "BTS|2", "FTS|1"]).encode()
    reads = read_file(text, "hl7", profiles=load_profiles(), zone=SHANGHAI)
    assert len(reads) == 2
    event, problem = reads
    # a message goes as it is, in one record, keyed by the case it maps to
    assert isinstance(event, FileMessage) and event.unit == "message" and event.line == 1
    assert event.key == b"H001/V-7"
    assert event.value == good.replace("\r\n", "\r").encode()
    assert isinstance(problem, LineProblem)
    assert str(problem).startswith("message 2: M2: ")


def test_the_format_is_guessed_from_the_name() -> None:
    assert guess_format("day.CSV") == "csv"
    assert guess_format("batch.hl7") == "hl7"
    assert guess_format("events.ndjson") == "ndjson"
    assert guess_format("events.jsonl") == "ndjson"


def test_a_record_holds_one_event_or_a_batch_and_a_bad_one_is_refused_with_the_field() -> None:
    assert read_record(orjson.dumps(CHARGE)) == [CHARGE]
    assert read_record(orjson.dumps({"events": [ADMITTED, CHARGE]})) == [ADMITTED, CHARGE]
    for value, field in [
        (None, "value"),
        (b"", "value"),
        (b"{oops", "body"),
        (b"[1]", "body"),
        (orjson.dumps({"events": []}), "events"),
    ]:
        with pytest.raises(PayloadRejected) as refused:
            read_record(value)
        assert refused.value.errors[0].field == field


def test_the_hospital_scope_is_a_list_of_ids_or_every_hospital() -> None:
    every = HospitalScope.parse("*")
    two = HospitalScope.parse(" H001, H002 ")
    assert every.allows("H999") and two.allows("H002") and not two.allows("H003")
    assert scope_refusal(CHARGE, two) is None
    outside = scope_refusal({**CHARGE, "hospital_id": "H003"}, two)
    assert outside == FieldError(
        field="hospital_id", reason="this intake does not take events for 'H003'"
    )
    for text in ["", " , ", "H001,*"]:
        with pytest.raises(ValueError):
            HospitalScope.parse(text)


def test_a_records_status_is_the_worst_of_its_events() -> None:
    record = IntakeRecord(
        topic="drgwatch-intake", partition=3, offset=41, key=b"H001/V-1", value=b"", source="mirth"
    )
    accepted = EventOutcome(event_id="A", status="accepted")
    duplicate = EventOutcome(event_id="B", status="duplicate")
    rejected = EventOutcome(
        event_id="C", status="rejected", errors=[FieldError(field="amount", reason="wrong")]
    )
    assert record_result(record, outcomes=[accepted, duplicate]).status == "accepted"
    assert record_result(record, outcomes=[duplicate]).status == "duplicate"
    mixed = record_result(record, outcomes=[accepted, rejected])
    assert mixed.status == "refused"
    assert mixed.reason == "events[1].amount: wrong"
    single = record_result(record, outcomes=[rejected])
    assert single.reason == "amount: wrong"
    unreadable = record_result(
        record, outcomes=[], refusal=[FieldError(field="body", reason="invalid JSON")]
    )
    assert unreadable.model_dump(mode="json") == {
        "record_id": "drgwatch-intake/3/41",
        "partition": 3,
        "offset": 41,
        "key": "H001/V-1",
        "source": "mirth",
        "status": "refused",
        "reason": "body: invalid JSON",
        "errors": [{"field": "body", "reason": "invalid JSON"}],
        "events": [],
    }


def test_the_source_header_is_read_and_cut_short() -> None:
    assert source_of(None) is None
    assert source_of([("other", b"x"), ("drgwatch-source", b"nifi-1")]) == "nifi-1"
    assert source_of([("drgwatch-source", b"x" * 100)]) == "x" * 64
