"""Topics are created with drgwatch's partition counts before any client can auto-create them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from services.ports import on_a_free_port
from services.settings import CommonSettings
from services.stack import start_broker
from services.supervisor import stop_child
from services.topics import create_topics, wanted_topics

pytestmark = pytest.mark.integration


def test_every_topic_gets_its_partition_count_not_the_broker_default(tmp_path: Path) -> None:
    port, broker = on_a_free_port(lambda port: start_broker(port, tmp_path / "broker.log"))
    # six is neither tansu's default for auto-created topics (four) nor one
    settings = CommonSettings(kafka_bootstrap=f"127.0.0.1:{port}", topic_partitions=6)

    async def partition_counts() -> dict[str, int]:
        await create_topics(settings)
        await create_topics(settings)  # idempotent
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            await producer.client.force_metadata_update()
            return {
                topic.name: len(producer.client.cluster.partitions_for_topic(topic.name) or ())
                for topic in wanted_topics(settings)
            }
        finally:
            await producer.stop()

    try:
        counts = asyncio.run(partition_counts())
    finally:
        stop_child(broker)
    assert counts == {
        settings.events_topic: 6,
        settings.alerts_topic: 6,
        settings.dead_letter_topic: 1,
        settings.intake_topic: 6,
        settings.intake_results_topic: 6,
        settings.case_changelog_topic: 6,
    }
