"""Text PostgreSQL cannot store (a NUL byte) is refused where it is an id, and kept, with
its NULs escaped, where it is what was refused: the dead letter is never dropped, and
the valid events posted beside it are ledgered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.alerting.projector import write_batch
from tests.api.helpers import HOSPITAL, charge
from tests.hostile.conftest import Api

JSON = {"content-type": "application/json"}


async def letters(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/dead-letters", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def ledgered(api: Api) -> list[str]:
    return [row.event_id for row in await api.rows("SELECT event_id FROM ingest_ledger")]


@pytest.mark.parametrize("field", ["case_id", "event_id", "hospital_id", "order_id"])
async def test_a_nul_in_one_event_leaves_the_rest_of_the_batch_ledgered(
    api: Api, field: str
) -> None:
    bad = {**charge("NUL-2"), field: "C\u00001"}
    body = {"events": [charge("NUL-1"), bad, charge("NUL-3", case_id="C2")]}

    first = await api.client.post("/v1/events", json=body)
    again = await api.client.post("/v1/events", json=body)

    assert first.status_code == 202, first.text
    results = first.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert [e["field"] for e in results[1]["errors"]] == [field]
    assert again.status_code == 202, again.text
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "rejected", "duplicate"]
    assert sorted(await ledgered(api)) == ["NUL-1", "NUL-3"]
    kept = await letters(api)
    assert len(kept) == 2
    for letter in kept:
        assert "\u0000" not in json.dumps(letter, ensure_ascii=False)
        assert letter["errors"][0]["field"] == field
        assert json.loads(letter["payload"])[field] == "C\u00001"  # the payload as sent


async def test_a_single_event_with_a_nul_case_id_is_refused_and_kept(api: Api) -> None:
    response = await api.client.post("/v1/events", json=charge("NUL-1", case_id="C\u00001"))

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["case_id"]
    (letter,) = await letters(api)
    assert letter["hospital_id"] == HOSPITAL
    assert letter["case_id"] == "C\\u00001"  # escaped, visibly
    assert letter["event_id"] == "NUL-1"
    assert json.loads(letter["payload"])["case_id"] == "C\u00001"


@pytest.mark.parametrize(
    ("name", "event", "field"),
    [
        ("nul in a field name", {**charge("NUL-K"), "pri\u0000ority": "high"}, "pri"),
        ("nul in the type", charge("NUL-T", type="charge\u0000"), "type"),
        ("nul in the item name", charge("NUL-N", item_name="Blood\u0000panel"), "item_name"),
    ],
)
async def test_nul_anywhere_in_an_event_is_refused_and_kept(
    api: Api, name: str, event: dict[str, Any], field: str
) -> None:
    response = await api.client.post("/v1/events", json=event)

    assert response.status_code == 422, name
    assert any(field in e["field"] for e in response.json()["errors"]), response.json()
    (letter,) = await letters(api)
    assert "\u0000" not in json.dumps(letter, ensure_ascii=False), name


async def test_a_body_that_is_not_json_with_a_nul_byte_is_kept(api: Api) -> None:
    raw = json.dumps(charge("NUL-B")).encode().replace(b"Blood", b"Bl\x00ood")

    response = await api.client.post("/v1/events", content=raw, headers=JSON)

    assert response.status_code == 422
    (letter,) = await letters(api)
    assert "Bl\\u0000ood" in letter["payload"]


async def test_the_projector_keeps_a_stream_dead_letter_holding_nul(api: Api) -> None:
    """A message the worker could not process is kept too (a failing write would make the
    projector retry the same batch for ever)."""
    letter = {"source": "0:7", "reason": "not JSON: \u0000", "payload": '{"a\u0000'}
    await write_batch(api.engine, api.sessions, [], [letter])

    (kept,) = await letters(api)
    assert (kept["stage"], kept["reason"], kept["payload"]) == (
        "stream",
        "not JSON: \\u0000",
        '{"a\\u0000',
    )
