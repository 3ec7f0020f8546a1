"""The end offsets a worker's table recovery reads the changelog up to, on the embedded
broker: each partition's last record, however its last record batch was sent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.alerting import transport
from services.alerting.settings import WorkerSettings
from services.alerting.worker import create_worker
from services.ports import on_a_free_port
from services.stack import start_broker
from services.supervisor import stop_child

pytestmark = pytest.mark.integration

# records per batch on each partition: the last batch of partitions 1-3 holds several
BATCHES = {0: [1], 1: [1, 5, 3], 2: [4], 3: [2, 1, 7]}
LAST_OFFSETS = {p: sum(sizes) - 1 for p, sizes in BATCHES.items()}


async def fill(bootstrap: str, topic: str) -> dict[int, int]:
    """Send BATCHES (an empty fifth partition besides); the offsets the broker acknowledged
    last, per partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, len(BATCHES) + 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=-1, linger_ms=20)
    await producer.start()
    acknowledged: dict[int, int] = {}
    try:
        for partition, sizes in BATCHES.items():
            for size in sizes:
                # sent together, they go out as one batch
                sent = [
                    await producer.send(topic, b"%d" % n, partition=partition) for n in range(size)
                ]
                acknowledged[partition] = max(m.offset for m in await asyncio.gather(*sent))
    finally:
        await producer.stop()
    return acknowledged


async def listed_ends(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(len(BATCHES) + 1)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


def test_recovery_reads_to_the_last_record_of_the_last_batch(tmp_path: Path) -> None:
    port, broker = on_a_free_port(lambda port: start_broker(port, tmp_path / "broker.log"))
    bootstrap = f"127.0.0.1:{port}"
    topic = "changelog-ends"
    try:
        acknowledged = asyncio.run(fill(bootstrap, topic))
        assert acknowledged == LAST_OFFSETS
        listed = asyncio.run(listed_ends(bootstrap, topic))
        expected = {TopicPartition(topic, p): last + 1 for p, last in LAST_OFFSETS.items()}
        expected[TopicPartition(topic, len(BATCHES))] = 0
        # what the worker's recovery gets: every end one past the last acknowledged record
        confirmed = asyncio.run(
            transport.confirmed_ends({"bootstrap_servers": bootstrap}, listed, timeout=10)
        )
        assert confirmed == expected, f"ListOffsets answered {listed}"

        # and through the worker's own consumer thread, which table recovery asks
        settings = WorkerSettings(
            kafka_bootstrap=bootstrap, data_dir=tmp_path, topic_prefix="ends", topic_partitions=1
        )
        app = create_worker(settings).app
        app.finalize()

        async def through_the_worker() -> dict[TopicPartition, int]:
            consumer: Any = app.consumer
            thread = consumer._thread
            await thread.start()
            try:
                return dict(await thread.highwaters(*expected))
            finally:
                await thread.stop()

        assert asyncio.run(through_the_worker()) == expected
    finally:
        stop_child(broker)
