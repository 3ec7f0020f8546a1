"""The ledger's publisher sends record batches: each event on the partition a record sent
alone would take, in order, sealed, with more than one batch when a partition's is full."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.ingest.publisher import EventPublisher
from services.ingest.service import Accepted
from services.ports import on_a_free_port
from services.settings import CommonSettings
from services.stack import start_broker
from services.supervisor import stop_child
from services.topics import create_topics
from services.wire import CASE_SEQUENCE_HEADER, EventSeal, case_key

pytestmark = pytest.mark.integration

SEAL = EventSeal(b"\x05" * 32)


def accepted(count: int, received: datetime) -> list[Accepted]:
    """`count` events over a few cases; the hot case's alone fill more than one batch.

    The first was received an hour before `received`: a receipt older than half the
    topic's retention (the publisher's default retention: an hour) does not stamp its
    record; the others do, each a millisecond after the one before.
    """
    long_ago = received - timedelta(hours=1)
    events = []
    for number in range(count):
        case_id = "HOT" if number % 2 else f"C{number % 7}"
        value = orjson.dumps({"event_id": f"e{number}", "note": "x" * 600})
        events.append(
            Accepted(
                seq=number + 1,
                key=case_key("H1", case_id),
                value=value,
                case_seq=number,
                received_at=(long_ago if number == 0 else received)
                + timedelta(milliseconds=number),
            )
        )
    return events


async def read_back(bootstrap: str, topic: str, expected: int) -> list[tuple[int, object]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[tuple[int, object]] = []
        while len(records) < expected:
            fetched = await consumer.getmany(timeout_ms=2000)
            if not fetched:
                break
            for part, batch in fetched.items():
                records.extend((part.partition, record) for record in batch)
        return records
    finally:
        await consumer.stop()


def test_batches_land_where_single_records_would_in_order_and_sealed(tmp_path: Path) -> None:
    port, broker = on_a_free_port(lambda port: start_broker(port, tmp_path / "broker.log"))
    settings = CommonSettings(kafka_bootstrap=f"127.0.0.1:{port}", topic_partitions=6)
    # a receipt of a few minutes ago, taken when the test runs (not when it is collected)
    received = datetime.now(UTC).replace(microsecond=123000) - timedelta(minutes=5)
    events = accepted(1200, received)  # ~400 KB on the hot case's partition: more than one batch

    async def run() -> tuple[list[int], list[tuple[int, object]], dict[bytes, int]]:
        await create_topics(settings)
        publisher = EventPublisher(settings.kafka_bootstrap, settings.events_topic)
        await publisher.start(SEAL)
        try:
            done = await publisher.publish(events)
        finally:
            await publisher.stop()
        # where a record sent alone goes, key by key
        alone = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await alone.start()
        try:
            where = {}
            for key in {event.key for event in events}:
                sent = await alone.send_and_wait(settings.intake_topic, value=b"-", key=key)
                where[key] = sent.partition
        finally:
            await alone.stop()
        return done, await read_back(settings.kafka_bootstrap, settings.events_topic, 1200), where

    try:
        done, records, alone = asyncio.run(run())
    finally:
        stop_child(broker)
    assert sorted(done) == [event.seq for event in events]
    assert len(records) == len(events)
    by_value = {event.value: event for event in events}
    seen_per_partition: dict[int, list[int]] = {}
    for partition, record in records:
        event = by_value[record.value]  # type: ignore[attr-defined]
        assert partition == alone[event.key]
        headers = list(record.headers)  # type: ignore[attr-defined]
        assert SEAL.verify(record.key, record.value, headers)  # type: ignore[attr-defined]
        assert dict(headers)[CASE_SEQUENCE_HEADER] == str(event.case_seq).encode()
        # the ledger's received_at, from which the worker counts the delay to an alert
        if event.seq == 1:  # received long ago: the producer's clock
            assert record.timestamp > received.timestamp() * 1000  # type: ignore[attr-defined]
        else:
            assert record.timestamp == received.timestamp() * 1000 + event.seq - 1  # type: ignore[attr-defined]
        seen_per_partition.setdefault(partition, []).append(event.seq)
    for seqs in seen_per_partition.values():
        assert seqs == sorted(seqs)
    assert len(seen_per_partition) > 1
