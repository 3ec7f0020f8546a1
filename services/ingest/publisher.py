"""Publish ledgered events to Kafka, keyed by case, sealed and timestamped with their
receipt, and relay whatever is left behind. The seal (services/wire.py EventSeal) is what
tells the worker a record came from the ingest ledger; only this publisher (and the
worker, for its own commands) makes it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import wire
from services.ingest.service import Accepted
from services.storage.models import LedgerEntry

log = logging.getLogger(__name__)
RELAY_BATCH = 2000
PUBLISH_WAIT_SECONDS = 2.0


class EventPublisher:
    """One producer per process; sends a batch, sealed, and waits for the broker's acks.

    Each record is stamped with its event's receipt while that is younger than half the
    topic's `retention`; an older one (a relay after a long outage, a replayed ledger)
    takes the producer's clock, as a record stamped older could be deleted by the
    broker's time-based retention before the worker reads it."""

    def __init__(
        self, bootstrap: str, topic: str, *, retention: timedelta = timedelta(hours=1)
    ) -> None:
        self.topic = topic
        self.stamped_within_ms = retention.total_seconds() * 1000 / 2
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        self._seal: wire.EventSeal | None = None
        self._partitioner = DefaultPartitioner()  # the producer's own, for batches
        self.started = False
        # ledger seqs the request path published, marked in the ledger by the relay loop
        # in one statement a pass rather than one transaction a request
        self.unmarked: list[int] = []

    def note_published(self, seqs: Sequence[int]) -> None:
        self.unmarked.extend(seqs)

    async def flush_marks(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        """Mark what the request path published; kept for the next pass if this fails."""
        seqs, self.unmarked = self.unmarked, []
        if not seqs:
            return 0
        try:
            async with sessions() as db_session:
                await mark_published(db_session, seqs)
                await db_session.commit()
        except BaseException:
            self.unmarked[:0] = seqs
            raise
        return len(seqs)

    async def start(self, seal: wire.EventSeal) -> None:
        """Connect to the broker; every event is then sealed with `seal`."""
        self._seal = seal
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=2,
            max_batch_size=256 * 1024,
            request_timeout_ms=10_000,
            client_id="drgwatch-ingest",
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        self.started = True

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self._producer = None
        self.started = False

    async def publish(self, accepted: Sequence[Accepted]) -> list[int]:
        """Send every event; return the ledger seqs the broker acknowledged.

        The events go as record batches, one (or more, when full) per partition, each
        in the given order: a record each through `send` cost more than the rest of
        ingest. Each event goes to the partition the producer's own partitioner gives
        its key, as a record sent alone would.
        """
        if not accepted or self._producer is None or self._seal is None:
            return []
        producer, seal = self._producer, self._seal
        partitions = list(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[Accepted]] = {}
        for item in accepted:
            partition = self._partitioner(item.key, partitions, partitions)
            by_partition.setdefault(partition, []).append(item)
        sent: list[tuple[list[Accepted], asyncio.Future[Any]]] = []
        oldest_ms = time.time() * 1000 - self.stamped_within_ms
        # a submission's events share one receipt (the same object): converted once
        received: datetime | None = None
        timestamp: int | None = None
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            in_batch: list[Accepted] = []
            for item in items:
                headers = seal.headers(item.key, item.value, item.case_seq)
                if item.received_at is not received:
                    received = item.received_at
                    timestamp = record_timestamp(item, oldest_ms)
                while (
                    batch.append(
                        key=item.key, value=item.value, timestamp=timestamp, headers=headers
                    )
                    is None
                ):
                    if not in_batch:
                        raise MessageSizeTooLargeError("an event larger than a record batch")
                    # full: sent, and the next one started
                    future = await producer.send_batch(batch, self.topic, partition=partition)
                    sent.append((in_batch, future))
                    batch, in_batch = producer.create_batch(), []
                in_batch.append(item)
            future = await producer.send_batch(batch, self.topic, partition=partition)
            sent.append((in_batch, future))
        results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        done = [
            item.seq
            for (carried, _), result in zip(sent, results, strict=True)
            if not isinstance(result, BaseException)
            for item in carried
        ]
        failed = len(accepted) - len(done)
        if failed:
            log.warning(
                "broker refused %d of %d events; the relay will retry", failed, len(accepted)
            )
        return done


def record_timestamp(item: Accepted, oldest_ms: float) -> int | None:
    """The record's timestamp (ms): when ingest received the event, so that a relayed
    event still counts from its receipt (the worker's event-to-alert delay); None (the
    producer's clock) for a receipt before `oldest_ms`."""
    if item.received_at is None:
        return None
    received_ms = round(item.received_at.timestamp() * 1000)
    return received_ms if received_ms >= oldest_ms else None


async def publish_durable(publisher: EventPublisher, accepted: Sequence[Accepted]) -> None:
    """Publish what the ledger already holds, waiting at most PUBLISH_WAIT_SECONDS: the
    events are durable already, so if the broker is slow or away the caller answers now
    and the relay publishes (a late acknowledgement only means a harmless duplicate)."""
    if accepted and publisher.started:
        try:
            done = await asyncio.wait_for(publisher.publish(accepted), PUBLISH_WAIT_SECONDS)
            publisher.note_published(done)
        except Exception:  # noqa: BLE001 - durable already; the relay publishes later
            pass


async def mark_published(db_session: AsyncSession, seqs: Sequence[int]) -> None:
    for start in range(0, len(seqs), 500):
        chunk = list(seqs[start : start + 500])
        await db_session.execute(
            update(LedgerEntry).where(LedgerEntry.seq.in_(chunk)).values(published=True)
        )


async def relay_once(
    sessions: async_sessionmaker[AsyncSession], publisher: EventPublisher, min_age: timedelta
) -> int:
    """Publish the oldest unpublished ledger entries; return how many went out."""
    cutoff = datetime.now(UTC) - min_age
    async with sessions() as db_session:
        rows = (
            await db_session.execute(
                select(
                    LedgerEntry.seq,
                    LedgerEntry.hospital_id,
                    LedgerEntry.case_id,
                    LedgerEntry.payload,
                    LedgerEntry.case_seq,
                    LedgerEntry.received_at,
                )
                .where(LedgerEntry.published.is_(False), LedgerEntry.received_at <= cutoff)
                .order_by(LedgerEntry.seq)
                .limit(RELAY_BATCH)
            )
        ).all()
        if not rows:
            return 0
        pending = [
            Accepted(
                seq=row.seq,
                key=wire.case_key(row.hospital_id, row.case_id),
                value=row.payload.encode(),
                case_seq=row.case_seq,
                received_at=row.received_at,
            )
            for row in rows
        ]
        done = await publisher.publish(pending)
        await mark_published(db_session, done)
        await db_session.commit()
        return len(done)


async def run_relay(
    sessions: async_sessionmaker[AsyncSession],
    publisher: EventPublisher,
    *,
    interval: float = 0.5,
    min_age: timedelta = timedelta(seconds=3),
) -> None:
    """Forever: hand the broker what the request path could not (crash, broker down).

    Each pass first marks what the request path published (well inside `min_age`, so
    the relay does not send those again; if marking fails they are sent again, which
    the worker refuses as duplicates).
    """
    while True:
        try:
            await publisher.flush_marks(sessions)
            while await relay_once(sessions, publisher, min_age) == RELAY_BATCH:
                pass
        except (KafkaError, SQLAlchemyError, OSError) as error:
            log.warning("relay pass failed, retrying: %s", error)
        await asyncio.sleep(interval)
