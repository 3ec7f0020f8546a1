"""POST /v1/events: the HTTP contract, the ledger and the dead letters."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services import logs
from services.ingest.service import MAX_BATCH
from tests.api.conftest import Api
from tests.api.helpers import HOSPITAL, admitted, charge


def fields(errors: list[dict[str, Any]]) -> set[str]:
    return {error["field"] for error in errors}


async def ledger_ids(api: Api) -> list[str]:
    rows = await api.rows("SELECT event_id FROM ingest_ledger ORDER BY seq")
    return [row.event_id for row in rows]


async def dead_letters(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/dead-letters", params={"limit": 500})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    items: list[dict[str, Any]] = body["items"]
    return items


async def test_single_valid_event_is_accepted_and_ledgered(api: Api) -> None:
    just_now = datetime.now(UTC).isoformat(timespec="seconds")
    response = await api.client.post("/v1/events", json=charge("e-1", occurred_at=just_now))

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1 and body["duplicates"] == 0 and body["rejected"] == 0
    assert body["results"] == [
        {"index": 0, "event_id": "e-1", "status": "accepted", "errors": [], "warnings": []}
    ]
    rows = await api.rows(
        "SELECT hospital_id, event_id, case_id, event_type, payload, published FROM ingest_ledger"
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row.hospital_id, row.event_id, row.case_id, row.event_type) == (
        HOSPITAL,
        "e-1",
        "C1",
        "charge",
    )
    assert row.published is False  # no broker: the relay publishes later
    payload = json.loads(row.payload)
    # money stays an exact decimal string in the durable payload
    assert payload["unit_price"] == "0.10"
    assert payload["amount"] == "0.10"
    assert payload["quantity"] == "1"
    assert isinstance(payload["unit_price"], str)


async def test_money_strings_are_kept_exactly(api: Api) -> None:
    event = charge("e-money", quantity="3", unit_price="0.1000", amount="0.30")
    response = await api.client.post("/v1/events", json=event)
    assert response.status_code == 202, response.text
    payload = json.loads(
        await api.scalar("SELECT payload FROM ingest_ledger WHERE event_id = 'e-money'")
    )
    assert payload["unit_price"] == "0.1000"
    assert payload["amount"] == "0.30"
    assert payload["quantity"] == "3"


async def test_batch_mixes_accepted_duplicate_and_rejected(api: Api) -> None:
    first = admitted("a-1")
    bad_amount = charge("bad-amount", amount="0.11")  # != quantity x unit_price
    bad_price = charge("bad-price", unit_price=0.1)  # JSON number for money
    bad_time = charge("bad-time", occurred_at="2026-03-02T09:00:00")  # no offset
    bad_category = charge("bad-cat", category="food")
    ok_charge = charge("c-1")
    batch = {
        "events": [first, bad_amount, dict(first), bad_price, bad_time, bad_category, ok_charge]
    }

    response = await api.client.post("/v1/events", json=batch)

    assert response.status_code == 202, response.text
    body = response.json()
    statuses = [(r["index"], r["event_id"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "a-1", "accepted"),
        (1, "bad-amount", "rejected"),
        (2, "a-1", "duplicate"),
        (3, "bad-price", "rejected"),
        (4, "bad-time", "rejected"),
        (5, "bad-cat", "rejected"),
        (6, "c-1", "accepted"),
    ]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 4)
    results = body["results"]
    assert fields(results[1]["errors"]) == {"amount"}
    assert fields(results[3]["errors"]) == {"unit_price"}
    assert fields(results[4]["errors"]) == {"occurred_at"}
    assert fields(results[5]["errors"]) == {"category"}
    for result in results:
        assert all(error["reason"] for error in result["errors"])
    assert await ledger_ids(api) == ["a-1", "c-1"]

    # the same events again in a second request: duplicates, nothing added
    again = await api.client.post("/v1/events", json={"events": [first, ok_charge]})
    assert again.status_code == 202, again.text
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert again.json()["duplicates"] == 2
    assert await ledger_ids(api) == ["a-1", "c-1"]

    # every refused event is kept, with its reason, and never reached the ledger
    letters = await dead_letters(api)
    by_id = {letter["event_id"]: letter for letter in letters}
    assert set(by_id) == {"bad-amount", "bad-price", "bad-time", "bad-cat"}
    for event_id, field in [
        ("bad-amount", "amount"),
        ("bad-price", "unit_price"),
        ("bad-time", "occurred_at"),
        ("bad-cat", "category"),
    ]:
        letter = by_id[event_id]
        assert letter["stage"] == "ingest"
        assert letter["hospital_id"] == HOSPITAL
        assert field in letter["reason"]
        assert fields(letter["errors"]) == {field}
        assert json.loads(letter["payload"])["event_id"] == event_id


async def test_reused_event_id_with_other_content_is_rejected(api: Api) -> None:
    assert (await api.client.post("/v1/events", json=charge("e-1"))).status_code == 202

    changed = charge("e-1", quantity="2", amount="0.20")
    response = await api.client.post("/v1/events", json={"events": [changed]})

    # a batch whose only item is refused: the body as a whole is refused, per item
    body = response.json()
    results = body["results"]
    assert results[0]["status"] == "rejected"
    assert fields(results[0]["errors"]) == {"event_id"}
    assert await ledger_ids(api) == ["e-1"]
    payload = json.loads(await api.scalar("SELECT payload FROM ingest_ledger"))
    assert payload["amount"] == "0.10"  # the first version stands
    letters = await dead_letters(api)
    assert [(letter["event_id"], letter["stage"]) for letter in letters] == [("e-1", "ingest")]
    assert "event_id" in letters[0]["reason"]


async def test_reused_event_id_within_one_batch_is_rejected(api: Api) -> None:
    batch = {"events": [charge("e-1"), charge("e-1", quantity="2", amount="0.20")]}
    response = await api.client.post("/v1/events", json=batch)
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert fields(results[1]["errors"]) == {"event_id"}
    assert await ledger_ids(api) == ["e-1"]


SINGLE_CONFLICT_IS_202 = (
    "services/ingest/service.py record(): the 'not is_batch and rejected' check runs before "
    "the ledger lookup, so a single event whose event_id was already used for other content "
    "is answered 202 (accepted=0, rejected=1) while every other refused single event is 422"
)


async def test_reused_event_id_single_event_is_refused_and_not_ledgered(api: Api) -> None:
    assert (await api.client.post("/v1/events", json=charge("e-1"))).status_code == 202
    response = await api.client.post("/v1/events", json=charge("e-1", item_name="Other"))
    body = response.json()
    named = {e["field"] for e in body.get("errors", [])} | {
        e["field"] for r in body.get("results", []) for e in r["errors"]
    }
    assert named == {"event_id"}
    assert body.get("accepted", 0) == 0
    assert await ledger_ids(api) == ["e-1"]
    payload = json.loads(await api.scalar("SELECT payload FROM ingest_ledger"))
    assert payload["item_name"] == "Blood panel"
    letters = await dead_letters(api)
    assert [(letter["event_id"], letter["stage"]) for letter in letters] == [("e-1", "ingest")]


async def test_reused_event_id_single_event_is_a_4xx(api: Api) -> None:
    assert (await api.client.post("/v1/events", json=charge("e-1"))).status_code == 202
    response = await api.client.post("/v1/events", json=charge("e-1", item_name="Other"))
    assert response.status_code in (409, 422), response.text


async def test_same_event_id_in_two_hospitals_is_two_events(api: Api) -> None:
    batch = {"events": [charge("e-1"), charge("e-1", hospital_id="H002")]}
    response = await api.client.post("/v1/events", json=batch)
    assert response.status_code == 202, response.text
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]
    assert len(await ledger_ids(api)) == 2


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        ({"amount": "0.11"}, "amount"),
        ({"unit_price": 0.1}, "unit_price"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"category": "food"}, "category"),
        ({"quantity": "0"}, "quantity"),
        ({"hospital_id": ""}, "hospital_id"),
    ],
)
async def test_single_invalid_event_is_422_naming_the_field(
    api: Api, breakage: dict[str, Any], field: str
) -> None:
    response = await api.client.post("/v1/events", json=charge("bad", **breakage))

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"]
    assert field in fields(body["errors"])
    assert all(error["reason"] for error in body["errors"])
    assert await ledger_ids(api) == []
    letters = await dead_letters(api)
    assert len(letters) == 1
    assert letters[0]["stage"] == "ingest"
    assert letters[0]["event_id"] == "bad"
    assert field in letters[0]["reason"]


async def test_missing_field_is_named(api: Api) -> None:
    event = charge("bad")
    del event["item_code"]
    response = await api.client.post("/v1/events", json=event)
    assert response.status_code == 422
    assert fields(response.json()["errors"]) == {"item_code"}


TYPE_NOT_NAMED = (
    "services/ingest/service.py field_errors: pydantic reports an unknown or missing "
    "discriminator ('union_tag_invalid' / 'union_tag_not_found') with loc=(), so the "
    "error's field falls back to 'body' instead of naming 'type'"
)


@pytest.mark.parametrize("type_", ["refund", None])
async def test_unknown_or_missing_type_is_named(api: Api, type_: str | None) -> None:
    event = charge("bad", type=type_)
    if type_ is None:
        del event["type"]
    response = await api.client.post("/v1/events", json=event)
    assert response.status_code == 422
    assert fields(response.json()["errors"]) == {"type"}


async def test_unknown_type_is_refused_with_reason(api: Api) -> None:
    response = await api.client.post("/v1/events", json=charge("bad", type="refund"))
    assert response.status_code == 422
    assert "type" in response.json()["errors"][0]["reason"]
    assert await ledger_ids(api) == []


async def test_invalid_json_is_422(api: Api) -> None:
    response = await api.client.post(
        "/v1/events", content=b'{"event_id": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert fields(response.json()["errors"]) == {"body"}
    assert await ledger_ids(api) == []


@pytest.mark.parametrize("body", [[charge("e-1")], "charge", 42, None])
async def test_body_not_an_object_is_422(api: Api, body: Any) -> None:
    response = await api.client.post(
        "/v1/events", content=orjson.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert fields(response.json()["errors"]) == {"body"}
    assert await ledger_ids(api) == []


async def test_empty_batch_is_422(api: Api) -> None:
    response = await api.client.post("/v1/events", json={"events": []})
    assert response.status_code == 422, response.text
    assert fields(response.json()["errors"]) == {"events"}


async def test_events_not_a_list_is_422(api: Api) -> None:
    response = await api.client.post("/v1/events", json={"events": {"a": 1}})
    assert response.status_code == 422
    assert fields(response.json()["errors"]) == {"events"}


async def test_batch_with_extra_keys_is_422(api: Api) -> None:
    response = await api.client.post("/v1/events", json={"events": [charge("e-1")], "x": 1})
    assert response.status_code == 422
    assert fields(response.json()["errors"]) == {"x"}
    assert await ledger_ids(api) == []


async def test_batch_over_limit_is_413(api: Api) -> None:
    events = [charge(f"e-{i}") for i in range(MAX_BATCH + 1)]
    response = await api.client.post("/v1/events", json={"events": events})
    assert response.status_code == 413, response.text
    assert fields(response.json()["errors"]) == {"events"}
    assert await ledger_ids(api) == []


async def test_batch_at_limit_is_accepted(api: Api) -> None:
    events = [charge(f"e-{i}") for i in range(MAX_BATCH)]
    response = await api.client.post("/v1/events", json={"events": events})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == MAX_BATCH
    assert await api.scalar("SELECT count(*) FROM ingest_ledger") == MAX_BATCH


async def test_body_over_5_mb_is_413(api: Api) -> None:
    big = charge("e-big", item_name="x" * 100)
    body = orjson.dumps({"events": [big], "pad": "y" * (5 * 1024 * 1024)})
    response = await api.client.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert fields(response.json()["errors"]) == {"body"}
    assert await ledger_ids(api) == []


async def test_streamed_body_over_5_mb_without_length_is_413(api: Api) -> None:
    async def chunks() -> Any:
        yield b'{"events": ['
        for _ in range(6):
            yield b" " * (1024 * 1024)
        yield b"]}"

    response = await api.client.post(
        "/v1/events", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert await ledger_ids(api) == []


async def test_batch_where_all_are_invalid_is_422_and_all_dead_lettered(api: Api) -> None:
    batch = {"events": [charge("b-1", amount="9.99"), charge("b-2", category="food")]}
    response = await api.client.post("/v1/events", json=batch)

    assert response.status_code == 422, response.text
    results = response.json()["results"]
    assert [(r["event_id"], r["status"]) for r in results] == [
        ("b-1", "rejected"),
        ("b-2", "rejected"),
    ]
    assert fields(results[0]["errors"]) == {"amount"}
    assert fields(results[1]["errors"]) == {"category"}
    assert await ledger_ids(api) == []
    letters = await dead_letters(api)
    assert {letter["event_id"] for letter in letters} == {"b-1", "b-2"}
    assert all(letter["stage"] == "ingest" for letter in letters)


async def test_rejected_events_never_reach_the_ledger(api: Api) -> None:
    """Nothing half-applied across every way an event can be refused."""
    await api.client.post("/v1/events", json=charge("x-single", amount="1.00"))
    await api.client.post(
        "/v1/events", json={"events": [charge("x-b1", unit_price="-1"), charge("ok-1")]}
    )
    await api.client.post("/v1/events", json={"events": [charge("x-b2", quantity=1.5)]})
    await api.client.post(
        "/v1/events", json={"events": [charge("ok-1", amount="0.10", item_code="OTHER")]}
    )
    assert await ledger_ids(api) == ["ok-1"]
    letters = await dead_letters(api)
    assert {letter["event_id"] for letter in letters} == {"x-single", "x-b1", "x-b2", "ok-1"}
    assert all(letter["stage"] == "ingest" and letter["reason"] for letter in letters)


async def test_dead_letters_filter_and_paginate(api: Api) -> None:
    events = [charge(f"bad-{i:02d}", amount="9.99") for i in range(7)] + [charge("ok")]
    assert (await api.client.post("/v1/events", json={"events": events})).status_code == 202
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "stage": "ingest", "hospital_id": HOSPITAL}
        if cursor:
            params["cursor"] = cursor
        body = (await api.client.get("/v1/dead-letters", params=params)).json()
        seen += [item["event_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"bad-{i:02d}" for i in reversed(range(7))]
    other = await api.client.get("/v1/dead-letters", params={"hospital_id": "H999"})
    assert other.json() == {"items": [], "next_cursor": None}
    stream = await api.client.get("/v1/dead-letters", params={"stage": "stream"})
    assert stream.json()["items"] == []
    garbage = await api.client.get("/v1/dead-letters", params={"cursor": "!!garbage"})
    assert garbage.status_code == 400


@pytest.mark.parametrize(
    ("content", "status", "reason"),
    [
        (b'{"event_id": "x",', 422, "invalid JSON"),
        (b"[1, 2, 3]", 422, "must be a JSON object"),
        (b'{"events": []}', 422, "must not be empty"),
        (b'{"events": "all of them"}', 422, "must be a list"),
        (b'{"events": [], "extra": 1}', 422, "unexpected field"),
    ],
)
async def test_a_submission_refused_as_a_whole_is_kept_as_a_dead_letter(
    api: Api, content: bytes, status: int, reason: str
) -> None:
    response = await api.client.post(
        "/v1/events", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    (letter,) = await dead_letters(api)
    assert letter["stage"] == "ingest" and reason in letter["reason"]
    assert letter["payload"]  # what was sent, as far as it could be kept
    assert await ledger_ids(api) == []


async def test_an_oversized_body_is_kept_as_a_dead_letter_with_its_head(api: Api) -> None:
    async def chunks() -> Any:
        yield b'{"events": [{"event_id": "head-of-it"'
        for _ in range(6):
            yield b" " * (1024 * 1024)

    response = await api.client.post(
        "/v1/events", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    (letter,) = await dead_letters(api)
    assert letter["reason"] == "body: too large"
    assert letter["payload"].startswith('{"events": [{"event_id": "head-of-it"')
    assert len(letter["payload"]) <= 16_384


async def test_a_batch_over_the_event_limit_is_kept_as_a_dead_letter(api: Api) -> None:
    events = [charge(f"e-{i}") for i in range(MAX_BATCH + 1)]
    response = await api.client.post("/v1/events", json={"events": events})
    assert response.status_code == 413
    (letter,) = await dead_letters(api)
    assert letter["reason"].startswith("events: more than")


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The refusal lines POST /v1/events wrote, as production JSON lines."""
    formatter = logs.JsonFormatter()
    return [
        orjson.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "services.api.events"
    ]


async def test_a_refused_event_is_one_warning_line_with_its_ids_and_nothing_of_its_content(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="services.api.events")
    refused = charge(
        "bad-9",
        "C77",
        quantity="Qorvexa-88317",
        item_name="Qorvexa imported stent 88317",
        patient_name="Lin Meixiu-Zqa",
    )
    response = await api.client.post("/v1/events", json=refused)
    assert response.status_code == 422, response.text
    (letter,) = await dead_letters(api)

    (line,) = refusal_lines(caplog)
    assert line["level"] == "WARNING"
    assert (line["event_id"], line["hospital_id"], line["case_id"]) == ("bad-9", HOSPITAL, "C77")
    written = orjson.dumps(line).decode()
    assert "Qorvexa" not in written and "Meixiu" not in written
    # the reason is the dead letter's, not the line's
    assert "patient_name" in letter["reason"] and "patient_name" not in written


async def test_a_refused_batchs_line_carries_the_ids_its_events_share(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="services.api.events")
    batch = {"events": [charge("b-1", "C5", amount="9.99"), charge("b-2", "C5", category="x")]}
    response = await api.client.post("/v1/events", json=batch)
    assert response.status_code == 422, response.text

    (line,) = refusal_lines(caplog)
    assert (line["hospital_id"], line["case_id"]) == (HOSPITAL, "C5")
    assert "event_id" not in line  # two events: neither one is the posting's


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        orjson.dumps(charge("Lin Meixiu-Zqa stent", "Lin Meixiu-Zqa", amount="9.99")),
    ],
)
async def test_a_refused_postings_line_names_no_id_that_is_not_shaped_like_one(
    api: Api, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    caplog.set_level(logging.WARNING, logger="services.api.events")
    response = await api.client.post(
        "/v1/events", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text

    (line,) = refusal_lines(caplog)
    assert line["level"] == "WARNING"
    assert "event_id" not in line and "case_id" not in line
    assert "Meixiu" not in orjson.dumps(line).decode()
