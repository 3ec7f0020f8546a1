"""Ingest numbers each case's events 1, 2, 3, ... in the order they became durable."""

from __future__ import annotations

import asyncio

from tests.api.conftest import Api
from tests.api.helpers import admitted, charge


async def case_sequences(api: Api, case_id: str) -> list[tuple[str, int]]:
    rows = await api.rows(
        "SELECT event_id, case_seq FROM ingest_ledger WHERE case_id = :case_id ORDER BY seq",
        case_id=case_id,
    )
    return [(row.event_id, row.case_seq) for row in rows]


async def test_each_case_is_numbered_in_submission_order_and_duplicates_take_no_number(
    any_api: Api,
) -> None:
    first = [admitted("a1", "C1"), charge("c1", "C1"), admitted("a2", "C2"), charge("c2", "C1")]
    response = await any_api.client.post("/v1/events", json={"events": first})
    assert response.status_code == 202, response.text
    again = [charge("c1", "C1"), charge("c3", "C1"), charge("c1", "C1"), charge("c4", "C2")]
    response = await any_api.client.post("/v1/events", json={"events": again})
    assert response.status_code == 202, response.text
    assert [r["status"] for r in response.json()["results"]] == [
        "duplicate",
        "accepted",
        "duplicate",
        "accepted",
    ]
    assert await case_sequences(any_api, "C1") == [("a1", 1), ("c1", 2), ("c2", 3), ("c3", 4)]
    assert await case_sequences(any_api, "C2") == [("a2", 1), ("c4", 2)]


async def test_concurrent_submissions_for_one_case_get_gapless_numbers(any_api: Api) -> None:
    """Twenty requests at once, each two events of the same case (and one of another)."""

    async def post(n: int) -> int:
        events = [charge(f"x{n}-1", "HOT"), charge(f"x{n}-2", "HOT"), charge(f"y{n}", f"K{n}")]
        response = await any_api.client.post("/v1/events", json={"events": events})
        return response.status_code

    statuses = await asyncio.gather(*(post(n) for n in range(20)))
    assert statuses == [202] * 20
    numbered = await case_sequences(any_api, "HOT")
    assert sorted(number for _, number in numbered) == list(range(1, 41))
    by_event = dict(numbered)
    for n in range(20):
        # the two events of one request are consecutive, in submission order
        assert by_event[f"x{n}-2"] == by_event[f"x{n}-1"] + 1
