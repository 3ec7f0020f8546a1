"""The Kafka topics drgwatch uses, created with the right partition counts before use.

A broker that creates topics on first use (tansu does; so does Apache Kafka with
auto.create.topics.enable) would otherwise give a topic its default partition count as
soon as any client asks for its metadata: a changelog with fewer partitions than the
events topic cannot hold every case's state.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.settings import CommonSettings


def wanted_topics(settings: CommonSettings) -> list[NewTopic]:
    partitions, replication = settings.topic_partitions, settings.topic_replication
    return [
        NewTopic(settings.events_topic, partitions, replication),
        NewTopic(settings.alerts_topic, partitions, replication),
        NewTopic(settings.dead_letter_topic, 1, replication),
        # integration engines' events, and one result per intake record (README "Kafka intake")
        NewTopic(settings.intake_topic, partitions, replication),
        NewTopic(settings.intake_results_topic, partitions, replication),
        # the worker's table: one partition per events partition, latest state per key
        NewTopic(
            settings.case_changelog_topic,
            partitions,
            replication,
            topic_configs={"cleanup.policy": "compact"},
        ),
    ]


async def create_topics(settings: CommonSettings) -> None:
    """Create whichever of the topics is missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted_topics(settings) if topic.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()
