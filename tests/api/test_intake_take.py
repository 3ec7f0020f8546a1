"""The intake's unit of work on PostgreSQL, without a broker: a batch of records into the
ledger and the dead letters, one answer per record, the same batch taken again, HL7
messages whole or refused, and transactions capped by their events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.hl7.profile import load_profiles
from services.ingest.intake.consumer import take
from services.ingest.intake.records import (
    HospitalScope,
    IntakeRecord,
    IntakeResult,
    answer,
    chunks,
    read,
)
from services.ingest.plausibility import TimeBounds
from services.ingest.service import Accepted
from services.storage.engine import session_factory
from services.storage.models import DeadLetter, LedgerEntry
from tests.unit.chargemaster_samples import sample_charge_book

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
BOUNDS = TimeBounds(future_skew=timedelta(minutes=5), backdated_after=timedelta(days=90))
SCOPE = HospitalScope.parse("H001")
PROFILES = load_profiles()
SHANGHAI = ZoneInfo("Asia/Shanghai")
BOOK = sample_charge_book()
TOPIC = "drgwatch-intake"


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
        IntakeRecord(topic=TOPIC, partition=0, offset=offset, key=b"H001/V-1", value=value)
        for offset, value in enumerate(values)
    ]


async def take_all(
    engine: AsyncEngine, batch: list[IntakeRecord], *, max_events: int = 500
) -> tuple[list[IntakeResult], list[list[Accepted]]]:
    """Take a batch as the intake does: read, one transaction per chunk, then answer;
    the answers, and the accepted events of each transaction."""
    readings = read(batch, scope=SCOPE, profiles=PROFILES, zone=SHANGHAI, charge_book=BOOK)
    units = [unit for reading in readings for unit in reading.units]
    accepted = []
    for group in chunks(units, max_events):
        async with session_factory(engine)() as db_session:
            accepted.append(await take(db_session, group, now=NOW, bounds=BOUNDS))
    return [answer(reading) for reading in readings], accepted


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
    results, [accepted] = await take_all(pg_engine, batch)
    assert [result.status for result in results] == [
        "accepted",
        "refused",
        "refused",
        "refused",
    ]
    assert [(r.record_id, r.partition, r.offset, r.key) for r in results] == [
        (f"{TOPIC}/0/{n}", 0, n, "H001/V-1") for n in range(4)
    ]
    assert [e.status for e in results[1].events] == ["accepted", "rejected"]
    assert results[1].reason is not None
    assert results[1].reason.startswith("events[1].amount: 26.00 != quantity x unit_price")
    assert results[2].errors[0].field == "body"
    assert results[3].reason == "hospital_id: this intake does not take events for 'H002'"
    assert len(accepted) == 2
    assert await counts(pg_engine) == (2, 3)

    # read again after a crash before the offsets were committed: answered again under
    # the same identity, and its refusals are dead letters already
    again, [accepted_again] = await take_all(pg_engine, batch)
    assert [result.record_id for result in again] == [result.record_id for result in results]
    assert [result.status for result in again] == [
        "duplicate",
        "refused",
        "refused",
        "refused",
    ]
    assert [e.status for e in again[1].events] == ["duplicate", "rejected"]
    assert [r.reason for r in again[1:]] == [r.reason for r in results[1:]]
    assert accepted_again == []
    assert await counts(pg_engine) == (2, 3)


async def test_a_batch_of_only_invalid_events_records_nothing_and_keeps_each(
    pg_engine: AsyncEngine,
) -> None:
    batch = records(
        orjson.dumps(charge("C-1", amount="1.00")),
        orjson.dumps({**charge("C-2"), "category": "caviar"}),
        None,
    )
    results, [accepted] = await take_all(pg_engine, batch)
    assert [result.status for result in results] == ["refused"] * 3
    assert results[0].errors[0].field == "amount"
    assert results[1].errors[0].field == "category"
    assert results[2].reason == "value: empty record (or a tombstone)"
    assert accepted == []
    assert await counts(pg_engine) == (0, 3)
    async with session_factory(pg_engine)() as db_session:
        kept = (await db_session.execute(select(DeadLetter.event_id, DeadLetter.stage))).all()
    assert sorted((row.event_id or "", row.stage) for row in kept) == [
        ("", "ingest"),
        ("C-1", "ingest"),
        ("C-2", "ingest"),
    ]

    # read again: every refusal is kept once
    await take_all(pg_engine, batch)
    assert await counts(pg_engine) == (0, 3)


MSH = r"MSH|^~\&|HIS|{h}|DRGWATCH|DRGWATCH|20261201083000+0800||DFT^P03|{id}|P|2.5"
PV1 = "PV1|1|I|W3|||||||CARD|||||||||V-7|01"
FT1 = "FT1|{n}|{id}-{n}||{day}080000||CG|HC01^Stent^CONS|||2|{amount}|12.50|CARD||||||||DR01"


def dft(control_id: str, *lines: tuple[str, str], hospital_id: str = "H001") -> str:
    """A DFT^P03 message with an FT1 per (amount, day)."""
    ft1s = [
        FT1.format(n=n, id=control_id, amount=amount, day=day)
        for n, (amount, day) in enumerate(lines, start=1)
    ]
    return "\r".join([MSH.format(h=hospital_id, id=control_id), PV1, *ft1s])


async def letters(engine: AsyncEngine) -> list[DeadLetter]:
    async with session_factory(engine)() as db_session:
        return list((await db_session.scalars(select(DeadLetter).order_by(DeadLetter.id))).all())


async def test_an_hl7_message_is_recorded_whole_or_refused_naming_its_segment(
    pg_engine: AsyncEngine,
) -> None:
    good = ("25.00", "20261201")
    wrong_amount = ("26.00", "20261201")
    tomorrow = ("25.00", "20261202")  # after NOW: refused by the contract, not the mapping
    batch = records(
        dft("M1", good, wrong_amount, good).encode(),
        dft("M2", good, tomorrow, good).encode(),
        # a batch: its second message is refused alone
        "\r".join(
            ["BHS|^~\\&", dft("M3", good, good), dft("M4", good, tomorrow), "BTS|2"]
        ).encode(),
        dft("M5", good, hospital_id="H002").encode(),
    )
    results, [accepted] = await take_all(pg_engine, batch)
    assert [result.status for result in results] == ["refused"] * 4

    assert results[0].reason == (
        "FT1-11 (FT1 #2): the extended amount 26.00 != quantity x unit amount (2 x 12.50 = 25.00)"
    )
    assert results[1].errors[0].field == "FT1-4 (FT1 #2)"
    assert results[1].errors[0].reason.startswith("occurred_at:")
    assert [e.status for e in results[1].events] == ["rejected"] * 3
    assert [e.errors[0].field for e in results[1].events] == ["message", "occurred_at", "message"]
    assert [e.status for e in results[2].events] == ["accepted", "accepted", "rejected", "rejected"]
    assert [error.field for error in results[2].errors] == ["messages[1].FT1-4 (FT1 #2)"]
    assert results[3].reason == "MSH-4: this intake does not take events for 'H002'"

    # nothing of a refused message is in the ledger; M3 is, whole
    async with session_factory(pg_engine)() as db_session:
        ledgered = (await db_session.scalars(select(LedgerEntry.event_id))).all()
    assert len(accepted) == 2 and len(ledgered) == 2
    kept = await letters(pg_engine)
    assert sorted(letter.source_key or "" for letter in kept) == [
        f"{TOPIC}/0/0#0",
        f"{TOPIC}/0/1#0",
        f"{TOPIC}/0/2#1",
        f"{TOPIC}/0/3#0",
    ]
    by_key = {letter.source_key: letter for letter in kept}
    assert by_key[f"{TOPIC}/0/1#0"].event_id == "M2"
    assert by_key[f"{TOPIC}/0/1#0"].reason.startswith("HL7 AE: FT1-4 (FT1 #2): occurred_at:")
    assert by_key[f"{TOPIC}/0/3#0"].hospital_id is None  # outside the scope: no one's list

    # read again: M3 is duplicates, the refusals are kept once
    again, _ = await take_all(pg_engine, batch)
    assert [e.status for e in again[2].events] == ["duplicate", "duplicate", "rejected", "rejected"]
    assert len(await letters(pg_engine)) == 4


async def test_transactions_are_capped_by_their_events_and_record_each_event_once(
    pg_engine: AsyncEngine,
) -> None:
    batch = records(
        *[orjson.dumps({"events": [charge(f"C-{n}-{i}") for i in range(4)]}) for n in range(5)],
        dft("M1", ("25.00", "20261201"), ("25.00", "20261201")).encode(),
    )
    results, accepted = await take_all(pg_engine, batch, max_events=9)
    # 4 + 4 events, 4 + 4, 4 + 2 (a record is never split)
    assert [len(events) for events in accepted] == [8, 8, 6]
    assert [result.status for result in results] == ["accepted"] * 6
    assert await counts(pg_engine) == (22, 0)
    again, accepted_again = await take_all(pg_engine, batch, max_events=9)
    assert [result.status for result in again] == ["duplicate"] * 6
    assert accepted_again == [[], [], []]
    async with session_factory(pg_engine)() as db_session:
        ids = (await db_session.scalars(select(LedgerEntry.event_id))).all()
    assert len(ids) == len(set(ids)) == 22


async def test_an_hl7_charge_the_profile_does_not_categorise_takes_the_chargemasters_category(
    pg_engine: AsyncEngine,
) -> None:
    # no coding system: the default profile maps none of these codes
    stent = dft("M9", ("11800.00", "20261201")).replace("HC01^Stent^CONS", "C-STENT-IMP^Stent")
    stent = stent.replace("|2|11800.00|12.50|", "|1|11800.00|11800.00|")
    unknown = dft("M10", ("25.00", "20261201")).replace("HC01^Stent^CONS", "X42^Unlisted")
    results, [accepted] = await take_all(pg_engine, records(stent.encode(), unknown.encode()))
    assert [result.status for result in results] == ["accepted", "accepted"]
    async with session_factory(pg_engine)() as db_session:
        rows = (await db_session.execute(select(LedgerEntry.event_id, LedgerEntry.payload))).all()
    categories = {row.event_id: orjson.loads(row.payload)["category"] for row in rows}
    assert categories == {"M9-1": "consumable", "M10-1": "other"}
