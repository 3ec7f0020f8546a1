"""Bring a new, empty broker to where the lost one was: from the case snapshots and the
ledger's tail, or from the whole ledger.

The projector keeps each case's latest changelog value in `case_snapshots`, with the
per-case ledger sequence that state applies next (`next_sequence`: every event up to
it is folded in; events ahead of a gap are held inside the state). A restore from
snapshots

1. writes every snapshot to the new changelog, keyed and partitioned as the worker's
   table writes it (the case key; the partition Kafka's default partitioner gives the
   key on the events topic, whose partitions the table's follow), then one end marker
   per partition (services/wire.py END_MARKER_KEY), so that the worker's table recovers
   these states; the projectors' offsets are committed past them (the database has
   them already);
2. marks unpublished the ledger entries no snapshot has applied: those at or past their
   case's `next_sequence`, every entry of a case without a snapshot, and the entries
   ledgered before cases were numbered; the API's relay publishes them, sealed, and the
   worker applies them on top of the recovered states.

The time this takes grows with the number of cases and the tail, not with the ledger's
age. A snapshot behind the ledger (the projector had not caught up) only lengthens the
tail. Alerts are not raised twice: each state carries its alert sequence and its latest
alerts, the tail raises the same deterministic ids a full replay would, and alert
inserts ignore an id already stored. Entries already unpublished stay so.

Neither step may run against a changelog that holds records (a live cluster): older
states written after newer ones would win. `seed_changelog` refuses then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import Table, and_, bindparam, func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerting import projector
from services.alerting.exceptions import ChangelogNotEmpty
from services.settings import CommonSettings
from services.storage.engine import make_engine, session_factory
from services.storage.models import CaseSequence, CaseSnapshot, LedgerEntry
from services.wire import END_MARKER_KEY, case_key

log = logging.getLogger(__name__)
SNAPSHOT_CHUNK = 2000
MARK_CHUNK = 500


@dataclass(frozen=True)
class Restored:
    """What a restore did: snapshots written to the changelog, ledger entries queued."""

    snapshots: int
    replayed: int


async def restore_from_snapshots(settings: CommonSettings) -> Restored:
    """Seed the (empty) changelog with the case snapshots, then queue the ledger's tail."""
    engine = make_engine(settings.resolved_database_url)
    try:
        sessions = session_factory(engine)
        seeded = await seed_changelog(settings, sessions)
        async with sessions() as db_session:
            replayed = await mark_tail_unpublished(db_session)
            await db_session.commit()
        return Restored(seeded, replayed)
    finally:
        await engine.dispose()


async def seed_changelog(
    settings: CommonSettings, sessions: async_sessionmaker[AsyncSession]
) -> int:
    """Write every case snapshot to the changelog, then an end marker per partition;
    returns how many were written. Raises ChangelogNotEmpty if it holds records."""
    topic = settings.case_changelog_topic
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
        request_timeout_ms=30_000,
        client_id="drgwatch-restore",
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(settings.events_topic))
        if await _holds_records(settings, topic):
            raise ChangelogNotEmpty(f"the changelog topic {topic} holds records already")
        partitioner = DefaultPartitioner()
        written = 0
        after: tuple[str, str] = ("", "")
        while True:
            async with sessions() as db_session:
                rows = (
                    await db_session.execute(
                        select(CaseSnapshot.hospital_id, CaseSnapshot.case_id, CaseSnapshot.state)
                        .where(
                            tuple_(CaseSnapshot.hospital_id, CaseSnapshot.case_id)
                            > tuple_(literal(after[0]), literal(after[1]))
                        )
                        .order_by(CaseSnapshot.hospital_id, CaseSnapshot.case_id)
                        .limit(SNAPSHOT_CHUNK)
                    )
                ).all()
            if not rows:
                break
            pending: list[Awaitable[Any]] = []
            for hospital_id, case_id, state in rows:
                key = case_key(hospital_id, case_id)
                partition = partitioner(key, partitions, partitions)
                pending.append(await producer.send(topic, state, key=key, partition=partition))
            await asyncio.gather(*pending)
            written += len(rows)
            after = (rows[-1].hospital_id, rows[-1].case_id)
        # each partition's last record alone in its batch: see END_MARKER_KEY
        markers = [
            await producer.send(topic, None, key=END_MARKER_KEY, partition=partition)
            for partition in partitions
        ]
        ends = {
            TopicPartition(topic, marker.partition): marker.offset + 1
            for marker in await asyncio.gather(*markers)
        }
    finally:
        await producer.stop()
    await _projected_up_to(settings, ends)
    return written


async def _projected_up_to(settings: CommonSettings, ends: dict[TopicPartition, int]) -> None:
    """Commit the projectors' offsets past the seeded records: the database holds those
    states already (they are its snapshots, written with the cases' rows and alerts), so
    the projectors start with what the worker writes next rather than write every case
    again."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=projector.consumer_group(settings),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit(ends)
    finally:
        await consumer.stop()


async def _holds_records(settings: CommonSettings, topic: str) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        found = consumer.partitions_for_topic(topic) or set()
        if not found:
            await consumer.topics()  # metadata for every topic
            found = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in sorted(found)])
        return any(offset > 0 for offset in ends.values())
    finally:
        await consumer.stop()


async def mark_tail_unpublished(db_session: AsyncSession) -> int:
    """Mark unpublished the ledger entries the snapshots have not applied; returns how
    many entries that tail holds (some may have been unpublished already)."""
    snapshot = CaseSnapshot.__table__
    numbered = CaseSequence.__table__
    ledger = cast(Table, LedgerEntry.__table__)
    first_unapplied = func.coalesce(snapshot.c.next_sequence, 1)
    behind = (
        await db_session.execute(
            select(numbered.c.hospital_id, numbered.c.case_id, first_unapplied, numbered.c.last_seq)
            .select_from(
                numbered.outerjoin(
                    snapshot,
                    and_(
                        snapshot.c.hospital_id == numbered.c.hospital_id,
                        snapshot.c.case_id == numbered.c.case_id,
                    ),
                )
            )
            .where(numbered.c.last_seq >= first_unapplied)
        )
    ).all()
    # per case, through the ledger's (hospital, case, case number) index
    statement = (
        update(ledger)
        .where(
            ledger.c.hospital_id == bindparam("h"),
            ledger.c.case_id == bindparam("c"),
            ledger.c.case_seq >= bindparam("n"),
            ledger.c.published.is_(True),
        )
        .values(published=False)
    )
    for start in range(0, len(behind), MARK_CHUNK):
        chunk = behind[start : start + MARK_CHUNK]
        await db_session.execute(statement, [{"h": h, "c": c, "n": n} for h, c, n, _ in chunk])
    # entries ledgered before cases were numbered, found through their partial index
    unnumbered = await db_session.execute(
        update(ledger)
        .where(ledger.c.case_seq.is_(None), ledger.c.published.is_(True))
        .values(published=False)
    )
    tail = sum(int(last) - int(first) + 1 for _, _, first, last in behind)
    return tail + max(int(getattr(unnumbered, "rowcount", 0) or 0), 0)


async def mark_whole_ledger_unpublished(db_session: AsyncSession) -> int:
    """Mark every published ledger entry unpublished (a replay of the whole ledger)."""
    result = await db_session.execute(
        update(LedgerEntry).where(LedgerEntry.published.is_(True)).values(published=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def describe(restored: Restored) -> str:
    return (
        f"{restored.snapshots} case snapshots written to the new changelog;"
        f" {restored.replayed} ledgered events after them queued for publishing"
    )
