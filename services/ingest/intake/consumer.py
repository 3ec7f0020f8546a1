"""The intake consumer: records from the intake topic through the ingest core.

For each fetched batch, in this order:
1. read every record (records.py) and keep only the events of this intake's hospitals;
2. record the events with the ingest core, the same as POST /v1/events (validated,
   written to the ledger, numbered in their case's order), and keep every refused record
   and event as a dead letter with its reason; one transaction, committed;
3. publish the accepted events through the EventPublisher (keyed by their own hospital
   and case, whatever the record's key), as the API does: what the broker does not
   acknowledge in time the relay publishes from the ledger;
4. send one result per record to the results topic, and wait for the broker's acks;
5. only then commit the intake offsets.

A crash anywhere before 5 reads the batch again: its events are then duplicates of the
ledgered ones (the ledger is keyed by hospital and event id), never counted twice, and
the re-read records get a second result (`duplicate`). A refused record read again is
kept as a dead letter again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import service as ingest_service
from services.ingest.exceptions import LedgerUnavailable, PayloadRejected
from services.ingest.intake.records import (
    EventOutcome,
    HospitalScope,
    IntakeRecord,
    IntakeResult,
    outcome_of,
    read_record,
    record_result,
    refused_outcome,
    scope_refusal,
    source_of,
)
from services.ingest.intake.settings import IntakeSettings
from services.ingest.plausibility import TimeBounds
from services.ingest.publisher import EventPublisher, publish_durable
from services.ingest.service import Accepted
from services.storage import dead_letters
from services.storage.models import DeadLetter
from services.validation import FieldError, summary

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0

INTAKE_RECORDS = Counter(
    "drgwatch_intake_records",
    "Intake records answered, by status (accepted, duplicate, refused)",
    ["status"],
)
INTAKE_EVENTS = Counter(
    "drgwatch_intake_events",
    "Events in intake records, by status (accepted, duplicate, rejected)",
    ["status"],
)
INTAKE_LAG = Gauge(
    "drgwatch_intake_lag",
    "Intake records not yet committed, per partition this intake holds",
    ["partition"],
)


@dataclass(slots=True)
class Taken:
    """What became of a batch: one result per record, and the events to publish."""

    results: list[IntakeResult]
    accepted: list[Accepted] = field(default_factory=list)


async def take(
    db_session: AsyncSession,
    records: Sequence[IntakeRecord],
    *,
    scope: HospitalScope,
    now: datetime,
    bounds: TimeBounds,
) -> Taken:
    """Record a batch of intake records in one transaction and commit it (see the module
    docstring); LedgerUnavailable or a database error leaves nothing recorded."""
    outcomes: dict[int, list[EventOutcome | None]] = {}
    unreadable: dict[int, list[FieldError]] = {}
    letters: list[DeadLetter] = []
    items: list[Any] = []
    origin: list[tuple[int, int]] = []  # an item's (record, event within the record)
    for record_index, record in enumerate(records):
        try:
            events = read_record(record.value)
        except PayloadRejected as refusal:
            unreadable[record_index] = refusal.errors or [
                FieldError(field="value", reason=refusal.message)
            ]
            raw = (record.value or b"")[: dead_letters.MAX_PAYLOAD_CHARS]
            letters += ingest_service.refusal_letters(
                items=[], raw_body=raw, refusal=refusal, now=now
            )
            continue
        slots: list[EventOutcome | None] = [None] * len(events)
        outcomes[record_index] = slots
        for event_index, event in enumerate(events):
            outside = scope_refusal(event, scope)
            if outside is not None:
                slots[event_index] = refused_outcome(event, [outside])
                # another hospital's event shows in no hospital's own list
                letters.append(
                    dead_letters.dead_letter(
                        stage="ingest",
                        raw=event,
                        reason=f"forbidden: {summary([outside])}",
                        errors=[outside.model_dump()],
                        now=now,
                        attribute=False,
                    )
                )
                continue
            origin.append((record_index, event_index))
            items.append(event)
    accepted: list[Accepted] = []
    if items:
        try:
            result, accepted = await ingest_service.record(
                db_session=db_session, items=items, is_batch=True, now=now, bounds=bounds
            )
            item_results = result.results
        except PayloadRejected as refusal:
            # nothing of the batch was recorded; every event's refusal is kept
            await db_session.rollback()
            item_results = refusal.results
            letters += ingest_service.refusal_letters(
                items=items, raw_body=b"", refusal=refusal, now=now
            )
        for item_result in item_results:
            record_index, event_index = origin[item_result.index]
            outcomes[record_index][event_index] = outcome_of(item_result)
    db_session.add_all(letters)
    await db_session.commit()
    results = []
    for record_index, record in enumerate(records):
        if record_index in unreadable:
            results.append(record_result(record, outcomes=[], refusal=unreadable[record_index]))
            continue
        answered = [
            outcome
            if outcome is not None
            else EventOutcome(
                event_id=None,
                status="rejected",
                errors=[FieldError(field="event", reason="not recorded")],
            )
            for outcome in outcomes[record_index]
        ]
        results.append(record_result(record, outcomes=answered))
    return Taken(results=results, accepted=accepted)


def count(results: Sequence[IntakeResult]) -> None:
    for result in results:
        INTAKE_RECORDS.labels(status=result.status).inc()
        for outcome in result.events:
            INTAKE_EVENTS.labels(status=outcome.status).inc()


class Intake:
    """The consumer loop; `run` until `stopping` is set (a batch in hand is finished)."""

    def __init__(
        self,
        settings: IntakeSettings,
        *,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
    ) -> None:
        self.settings = settings
        self.scope = settings.hospital_scope
        self.sessions = sessions
        self.publisher = publisher
        self.consumer = consumer
        self.producer = producer

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            fetched = await self.consumer.getmany(
                timeout_ms=500, max_records=self.settings.intake_batch_records
            )
            records = [
                IntakeRecord(
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    source=source_of(message.headers),
                )
                for messages in fetched.values()
                for message in messages
            ]
            if records:
                taken = await self._record(records, stopping)
                if taken is None:
                    return  # stopping while the database was away: read again next start
                await publish_durable(self.publisher, taken.accepted)
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await self.publisher.flush_marks(self.sessions)
                if not await self._answer(records, taken.results, stopping):
                    return
                await self._commit(
                    {tp: messages[-1].offset + 1 for tp, messages in fetched.items() if messages}
                )
                count(taken.results)
            await self._measure_lag()

    async def _record(self, records: list[IntakeRecord], stopping: asyncio.Event) -> Taken | None:
        """Take the batch, retrying while the database is away."""
        while True:
            try:
                async with self.sessions() as db_session:
                    taken = await take(
                        db_session,
                        records,
                        scope=self.scope,
                        now=datetime.now(UTC),
                        bounds=self.settings.time_bounds,
                    )
            except (LedgerUnavailable, SQLAlchemyError, OSError) as error:
                log.warning("intake: cannot record a batch now, retrying: %s", error)
                if stopping.is_set():
                    return None
                await asyncio.sleep(RETRY_SECONDS)
                continue
            return taken

    async def _answer(
        self, records: list[IntakeRecord], results: list[IntakeResult], stopping: asyncio.Event
    ) -> bool:
        """Send every result and wait for the broker's acks; False if stopped first."""
        topic = self.settings.intake_results_topic
        while True:
            try:
                sends = [
                    await self.producer.send(
                        topic,
                        value=orjson.dumps(result.model_dump(mode="json")),
                        key=record.key,
                    )
                    for record, result in zip(records, results, strict=True)
                ]
                await asyncio.gather(*sends)
                return True
            except (KafkaError, OSError) as error:
                log.warning("intake: cannot send results now, retrying: %s", error)
                if stopping.is_set():
                    return False
                await asyncio.sleep(RETRY_SECONDS)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as error:
            # the partitions went to another member: it reads the batch again, and finds
            # its events duplicates
            log.warning("intake: offsets not committed (%s); the batch will be read again", error)

    async def _measure_lag(self) -> None:
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            with contextlib.suppress(KafkaError, AssertionError):
                position = await self.consumer.position(tp)
                INTAKE_LAG.labels(partition=str(tp.partition)).set(max(0, highwater - position))


def make_consumer(settings: IntakeSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        settings.intake_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.intake_group,
        client_id="drgwatch-intake",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # a small cluster (and tansu) join a group in seconds with these
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        rebalance_timeout_ms=3000,
        max_poll_interval_ms=300_000,
    )


def make_results_producer(settings: IntakeSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=2,
        request_timeout_ms=10_000,
        client_id="drgwatch-intake-results",
    )
