"""The intake consumer: records from the intake topic through the ingest core.

For each fetched batch, in this order:
1. read every record (records.py) into units (a JSON record's events, or an HL7
   message's), refusing the events of hospitals outside this intake's scope;
2. record the units, in transactions of at most DRGWATCH_INTAKE_TRANSACTION_EVENTS
   events, with the ingest core, the same as POST /v1/events and POST /v1/hl7
   (validated, written to the ledger, numbered in their case's order; an HL7 message
   whole or not at all), and keep every refused record, event and message as a dead
   letter with its reason; each transaction committed, then its accepted events
   published through the EventPublisher (keyed by their own hospital and case,
   whatever the record's key), as the API does: what the broker does not acknowledge
   in time the relay publishes from the ledger;
3. send one result per record to the results topic, and wait for the broker's acks;
4. only then commit the intake offsets.

A crash anywhere before 4 reads the batch again: its events are then duplicates of the
ledgered ones (the ledger is keyed by hospital and event id), never counted twice; its
refusals are dead letters already (each is kept under its record's topic, partition
and offset, and the event's or message's place in it), never kept twice; and each
re-read record gets a second result under the same `record_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.casecost.chargemaster import ChargeBook
from services.ingest import service as ingest_service
from services.ingest.exceptions import LedgerUnavailable
from services.ingest.hl7.intake import contract_problems, refusal_letter
from services.ingest.hl7.profile import Profiles
from services.ingest.intake.records import (
    IntakeRecord,
    IntakeResult,
    Unit,
    answer,
    chunks,
    outcome_of,
    read,
    refuse_message,
    source_of,
)
from services.ingest.intake.settings import IntakeSettings
from services.ingest.plausibility import TimeBounds
from services.ingest.publisher import EventPublisher, publish_durable
from services.ingest.schemas import ItemResult
from services.ingest.service import Accepted
from services.metrics import count_ingested
from services.reference.chargemaster.service import KeptChargeBook
from services.storage import dead_letters
from services.storage.models import DeadLetter
from services.validation import summary

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


async def take(
    db_session: AsyncSession, units: Sequence[Unit], *, now: datetime, bounds: TimeBounds
) -> list[Accepted]:
    """Record units in one transaction and commit it, filling in each event's outcome;
    the accepted events, to publish. A message with a refused event is taken out and
    the rest recorded again without it, so that nothing of it is recorded.
    LedgerUnavailable or a database error leaves nothing recorded."""
    letters: dict[str, DeadLetter] = {}
    for unit in units:
        unit.reset()
        letters.update(_read_refusals(unit, now))
    live = [unit for unit in units if unit.pending()]
    accepted: list[Accepted] = []
    while live:
        items: list[Any] = []
        origin: list[tuple[Unit, int]] = []  # an item's unit, and its event there
        for unit in live:
            for index in unit.pending():
                items.append(unit.events[index])
                origin.append((unit, index))
        recording = await ingest_service.record_each(
            db_session=db_session, items=items, now=now, bounds=bounds
        )
        broken = {
            id(origin[result.index][0]): origin[result.index][0]
            for result in recording.results
            if result.status == "rejected" and origin[result.index][0].message is not None
        }
        if broken:
            await db_session.rollback()
            for unit in broken.values():
                _refuse_message(unit, recording.results, origin)
            live = [unit for unit in live if id(unit) not in broken]
            continue
        for result in recording.results:
            unit, index = origin[result.index]
            unit.outcomes[index] = outcome_of(result)
            if result.index in recording.letters:
                letters[f"{unit.key}#{index}"] = recording.letters[result.index]
        accepted = recording.accepted
        break
    for unit in units:
        if unit.message is not None and unit.problems:
            code = unit.message.mapped.refusal or "AE"
            letters[unit.key] = refusal_letter(
                unit.message, code, unit.problems, now, attribute=unit.attribute
            )
    await dead_letters.keep_once(db_session, letters)
    await db_session.commit()
    return accepted


def _read_refusals(unit: Unit, now: datetime) -> dict[str, DeadLetter]:
    """The dead letters of what was refused as it was read: a record that cannot be read,
    and events of hospitals outside the scope (in no hospital's own list)."""
    if unit.unreadable is not None:
        [letter] = ingest_service.refusal_letters(
            items=[], raw_body=unit.raw, refusal=unit.unreadable, now=now
        )
        return {unit.key: letter}
    if unit.message is not None:
        return {}
    return {
        f"{unit.key}#{index}": dead_letters.dead_letter(
            stage="ingest",
            raw=unit.events[index],
            reason=f"forbidden: {summary(outcome.errors)}",
            errors=[error.model_dump() for error in outcome.errors],
            now=now,
            attribute=False,
        )
        for index, outcome in unit.outside.items()
    }


def _refuse_message(
    unit: Unit, results: Sequence[ItemResult], origin: list[tuple[Unit, int]]
) -> None:
    """Refuse a message one of whose events was refused, naming its segments and fields."""
    own = [
        result.model_copy(update={"index": origin[result.index][1]})
        for result in results
        if origin[result.index][0] is unit
    ]
    assert unit.message is not None
    unit.problems = contract_problems(unit.message.mapped.events, own)
    refuse_message(unit, own)


def count(results: Sequence[IntakeResult]) -> None:
    for result in results:
        INTAKE_RECORDS.labels(status=result.status).inc()
        for outcome in result.events:
            INTAKE_EVENTS.labels(status=outcome.status).inc()
            count_ingested("intake", outcome.status, 1)


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
        profiles: Profiles,
    ) -> None:
        self.settings = settings
        self.scope = settings.hospital_scope
        self.sessions = sessions
        self.publisher = publisher
        self.consumer = consumer
        self.producer = producer
        self.profiles = profiles
        self.charge_book = KeptChargeBook()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            fetched = await self.consumer.getmany(
                timeout_ms=500, max_records=self.settings.intake_batch_records
            )
            records = [
                IntakeRecord(
                    topic=message.topic,
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
                charge_book = await self._charge_book(stopping)
                if charge_book is None:
                    return  # stopping while the database was away: read again next start
                readings = read(
                    records,
                    scope=self.scope,
                    profiles=self.profiles,
                    zone=self.settings.zone,
                    charge_book=charge_book,
                )
                units = [unit for reading in readings for unit in reading.units]
                for group in chunks(units, self.settings.intake_transaction_events):
                    accepted = await self._record(group, stopping)
                    if accepted is None:
                        return  # stopping while the database was away: read again next start
                    await publish_durable(self.publisher, accepted)
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await self.publisher.flush_marks(self.sessions)
                results = [answer(reading) for reading in readings]
                if not await self._answer(records, results, stopping):
                    return
                await self._commit(
                    {tp: messages[-1].offset + 1 for tp, messages in fetched.items() if messages}
                )
                count(results)
            await self._measure_lag()

    async def _charge_book(self, stopping: asyncio.Event) -> ChargeBook | None:
        """The chargemasters in force, for the categories of HL7 charges the facility's
        profile does not give; retried while the database is away."""
        while True:
            try:
                async with self.sessions() as db_session:
                    return await self.charge_book.current(db_session=db_session)
            except (SQLAlchemyError, OSError) as error:
                log.warning("intake: cannot read the chargemasters now, retrying: %s", error)
                if stopping.is_set():
                    return None
                await asyncio.sleep(RETRY_SECONDS)

    async def _record(self, units: list[Unit], stopping: asyncio.Event) -> list[Accepted] | None:
        """Take units in one transaction, retrying while the database is away."""
        while True:
            try:
                async with self.sessions() as db_session:
                    accepted = await take(
                        db_session,
                        units,
                        now=datetime.now(UTC),
                        bounds=self.settings.time_bounds,
                    )
            except (LedgerUnavailable, SQLAlchemyError, OSError) as error:
                log.warning("intake: cannot record a batch now, retrying: %s", error)
                if stopping.is_set():
                    return None
                await asyncio.sleep(RETRY_SECONDS)
                continue
            return accepted

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
