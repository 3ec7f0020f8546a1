"""Postings that arrive together share one ledger transaction, each answered as if alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from services.ingest import service as ingest_service
from services.ingest.exceptions import PayloadRejected
from services.ingest.group_commit import GroupCommit
from services.ingest.plausibility import TimeBounds
from tests.api.conftest import Api
from tests.api.helpers import admitted, charge


def submission(events: list[dict[str, Any]], *, is_batch: bool = True) -> Any:
    return ingest_service.prepare(
        items=events, is_batch=is_batch, now=datetime.now(UTC), bounds=TimeBounds()
    )


async def numbers(api: Api, case_id: str) -> list[tuple[str, int]]:
    rows = await api.rows(
        "SELECT event_id, case_seq FROM ingest_ledger WHERE case_id = :case_id ORDER BY seq",
        case_id=case_id,
    )
    return [(row.event_id, row.case_seq) for row in rows]


async def test_submissions_queued_together_commit_once_each_with_its_own_results(
    any_api: Api,
) -> None:
    commits: list[int] = []
    event.listen(any_api.engine.sync_engine, "commit", lambda _connection: commits.append(1))
    group_commit: GroupCommit = any_api.app.state.group_commit
    first = submission([admitted("a1", "C1"), charge("c1", "C1")])
    again = submission([charge("c1", "C1"), charge("c2", "C1")])
    reused = submission([charge("c1", "C1", quantity="2", amount="0.20")], is_batch=False)
    other = submission([charge("d1", "C2")])

    answers = await asyncio.gather(
        *(group_commit.record(s) for s in (first, again, reused, other)),
        return_exceptions=True,
    )

    assert len(commits) == 1
    first_result, first_accepted = answers[0]
    assert [r.status for r in first_result.results] == ["accepted", "accepted"]
    assert [a.case_seq for a in first_accepted] == [1, 2]
    again_result, again_accepted = answers[1]
    # the first submission's c1 came first: this one's is its duplicate
    assert [r.status for r in again_result.results] == ["duplicate", "accepted"]
    assert [a.case_seq for a in again_accepted] == [3]
    # nothing of it recorded; its caller keeps its dead letter (none kept here)
    assert isinstance(answers[2], PayloadRejected)
    assert answers[2].errors[0].field == "event_id"
    other_result, _ = answers[3]
    assert other_result.accepted == 1
    assert await numbers(any_api, "C1") == [("a1", 1), ("c1", 2), ("c2", 3)]
    assert await numbers(any_api, "C2") == [("d1", 1)]
    assert await any_api.scalar("SELECT count(*) FROM dead_letters") == 0


async def test_a_group_larger_than_its_limit_is_split_between_postings(any_api: Api) -> None:
    group_commit = GroupCommit(any_api.sessions, max_events=3)
    commits: list[int] = []
    event.listen(any_api.engine.sync_engine, "commit", lambda _connection: commits.append(1))
    postings = [submission([charge(f"s{n}-1", "S"), charge(f"s{n}-2", "S")]) for n in range(4)]

    answers = await asyncio.gather(*(group_commit.record(s) for s in postings))

    # 2 + 2 events exceed 3: one posting a group (a posting is never split)
    assert len(commits) == 4
    assert [[a.case_seq for a in accepted] for _, accepted in answers] == [
        [1, 2],
        [3, 4],
        [5, 6],
        [7, 8],
    ]


async def test_an_invalid_posting_among_concurrent_ones_fails_alone(any_api: Api) -> None:
    bodies: list[Any] = [{"events": [charge(f"ok{n}", f"K{n}")]} for n in range(4)]
    bodies.insert(2, {"events": [charge("bad", "K9", amount="9.99")]})

    responses = await asyncio.gather(
        *(any_api.client.post("/v1/events", json=body) for body in bodies)
    )

    assert [r.status_code for r in responses] == [202, 202, 422, 202, 202]
    assert "amount" in responses[2].text
    assert await any_api.scalar("SELECT count(*) FROM ingest_ledger") == 4
    assert await any_api.scalar("SELECT count(*) FROM dead_letters") == 1


@pytest.mark.parametrize("limit", [1, 2000])
async def test_every_posting_is_answered_after_the_commit_that_holds_it(
    any_api: Api, limit: int
) -> None:
    """What a 202 says is in the ledger is there when the answer arrives."""
    any_api.app.state.group_commit = GroupCommit(any_api.sessions, max_events=limit)

    async def post(n: int) -> None:
        events = [charge(f"p{n}-1", "HOT"), charge(f"p{n}-2", f"Q{n}")]
        response = await any_api.client.post("/v1/events", json={"events": events})
        assert response.status_code == 202, response.text
        stored = await any_api.scalar(
            "SELECT count(*) FROM ingest_ledger WHERE event_id IN (:a, :b)",
            a=f"p{n}-1",
            b=f"p{n}-2",
        )
        assert stored == 2

    await asyncio.gather(*(post(n) for n in range(12)))
    assert sorted(n for _, n in await numbers(any_api, "HOT")) == list(range(1, 13))
