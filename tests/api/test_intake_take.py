"""The intake's unit of work on PostgreSQL, without a broker: a batch of records into the
ledger and the dead letters, one answer per record, and the same batch taken again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.intake.consumer import take
from services.ingest.intake.records import HospitalScope, IntakeRecord
from services.ingest.plausibility import TimeBounds
from services.storage.engine import session_factory
from services.storage.models import DeadLetter, LedgerEntry

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
BOUNDS = TimeBounds(future_skew=timedelta(minutes=5), backdated_after=timedelta(days=90))
SCOPE = HospitalScope.parse("H001")


def charge(event_id: str, amount: str = "25.00", hospital_id: str = "H001") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "charge",
        "hospital_id": hospital_id,
        "case_id": "V-1",
        "occurred_at": "2026-12-01T08:00:00+08:00",
        "department": "CARD",
        "item_code": "HC01",
        "item_name": "Stent",
        "category": "consumable",
        "quantity": "2",
        "unit_price": "12.50",
        "amount": amount,
    }


def records(*values: bytes | None) -> list[IntakeRecord]:
    return [
        IntakeRecord(partition=0, offset=offset, key=b"H001/V-1", value=value)
        for offset, value in enumerate(values)
    ]


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with session_factory(engine)() as db_session:
        ledger = await db_session.scalar(select(func.count()).select_from(LedgerEntry))
        letters = await db_session.scalar(select(func.count()).select_from(DeadLetter))
    return int(ledger or 0), int(letters or 0)


async def test_a_batch_is_ledgered_refusals_kept_and_taken_again_it_is_duplicates(
    pg_engine: AsyncEngine,
) -> None:
    batch = records(
        orjson.dumps(charge("C-1")),
        orjson.dumps({"events": [charge("C-2"), charge("C-3", amount="26.00")]}),
        b"not json",
        orjson.dumps(charge("C-4", hospital_id="H002")),
    )
    sessions = session_factory(pg_engine)
    async with sessions() as db_session:
        taken = await take(db_session, batch, scope=SCOPE, now=NOW, bounds=BOUNDS)
    assert [result.status for result in taken.results] == [
        "accepted",
        "refused",
        "refused",
        "refused",
    ]
    assert [(r.partition, r.offset, r.key) for r in taken.results] == [
        (0, n, "H001/V-1") for n in range(4)
    ]
    assert [e.status for e in taken.results[1].events] == ["accepted", "rejected"]
    assert taken.results[1].reason is not None
    assert taken.results[1].reason.startswith("events[1].amount: 26.00 != quantity x unit_price")
    assert taken.results[2].errors[0].field == "body"
    assert taken.results[3].reason == "hospital_id: this intake does not take events for 'H002'"
    assert len(taken.accepted) == 2
    assert await counts(pg_engine) == (2, 3)

    # read again after a crash before the offsets were committed
    async with sessions() as db_session:
        again = await take(db_session, batch, scope=SCOPE, now=NOW, bounds=BOUNDS)
    assert [result.status for result in again.results] == [
        "duplicate",
        "refused",
        "refused",
        "refused",
    ]
    assert [e.status for e in again.results[1].events] == ["duplicate", "rejected"]
    assert again.accepted == []
    assert (await counts(pg_engine))[0] == 2


async def test_a_batch_of_only_invalid_events_records_nothing_and_keeps_each(
    pg_engine: AsyncEngine,
) -> None:
    batch = records(
        orjson.dumps(charge("C-1", amount="1.00")),
        orjson.dumps({**charge("C-2"), "category": "caviar"}),
        None,
    )
    async with session_factory(pg_engine)() as db_session:
        taken = await take(db_session, batch, scope=SCOPE, now=NOW, bounds=BOUNDS)
    assert [result.status for result in taken.results] == ["refused"] * 3
    assert taken.results[0].errors[0].field == "amount"
    assert taken.results[1].errors[0].field == "category"
    assert taken.results[2].reason == "value: empty record (or a tombstone)"
    assert taken.accepted == []
    assert await counts(pg_engine) == (0, 3)
    async with session_factory(pg_engine)() as db_session:
        kept = (await db_session.execute(select(DeadLetter.event_id, DeadLetter.stage))).all()
    assert sorted((row.event_id or "", row.stage) for row in kept) == [
        ("", "ingest"),
        ("C-1", "ingest"),
        ("C-2", "ingest"),
    ]
