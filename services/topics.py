"""The Kafka topics drgwatch uses, created with the right partition counts before use.

A broker that creates topics on first use (tansu does; so does Apache Kafka with
auto.create.topics.enable) would otherwise give a topic its default partition count as
soon as any client asks for its metadata: a changelog with fewer partitions than the
events topic cannot hold every case's state.

`ensure_topics` (`drgwatch topics ensure`) creates the missing topics with their
configuration and compares the existing ones with what the settings ask: partitions,
replication and the topic configs. Nothing is ever changed on an existing topic: more
partitions would move cases between partitions (events are keyed by case), and the
operator decides. A broker that does not report a topic's configs (DescribeConfigs
answering nothing, as some Kafka-compatible brokers do) leaves those configs unchecked,
which the check says rather than fails on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from services.settings import CommonSettings

log = logging.getLogger(__name__)
ADMIN_TIMEOUT_MS = 15_000
METADATA_WAIT_SECONDS = 15.0


class TopicRefused(RuntimeError):
    """The broker refused to create a topic (e.g. a replication factor above its brokers)."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic as drgwatch wants it."""

    name: str
    partitions: int
    replication: int
    configs: Mapping[str, str] = field(default_factory=dict)

    def new_topic(self) -> NewTopic:
        return NewTopic(
            self.name, self.partitions, self.replication, topic_configs=dict(self.configs)
        )


@dataclass(frozen=True)
class TopicCheck:
    """What `ensure_topics` found for one topic.

    `differences` name what the broker has against what was asked (the topic is left
    as it is); `unchecked` names the configs the broker did not report.
    """

    name: str
    created: bool
    differences: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()


def wanted_topics(settings: CommonSettings) -> list[TopicSpec]:
    partitions, replication = settings.topic_partitions, settings.topic_replication
    durable = {"min.insync.replicas": str(settings.min_insync_replicas)}
    kept = {
        **durable,
        "cleanup.policy": "delete",
        "retention.ms": str(settings.topic_retention_hours * 3_600_000),
    }
    return [
        TopicSpec(settings.events_topic, partitions, replication, kept),
        TopicSpec(settings.alerts_topic, partitions, replication, kept),
        # one partition: the projector records dead letters in the order they came
        TopicSpec(settings.dead_letter_topic, 1, replication, kept),
        # integration engines' events, and one result per intake record (README "Kafka intake")
        TopicSpec(settings.intake_topic, partitions, replication, kept),
        TopicSpec(settings.intake_results_topic, partitions, replication, kept),
        # the worker's table: one partition per events partition, latest state per key
        TopicSpec(
            settings.case_changelog_topic,
            partitions,
            replication,
            {**durable, "cleanup.policy": "compact"},
        ),
    ]


async def create_topics(settings: CommonSettings) -> None:
    """Create whichever of the topics is missing (idempotent); existing ones are not
    checked (`ensure_topics` does that)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS
    )
    await admin.start()
    try:
        await _create_missing(admin, wanted_topics(settings))
    finally:
        await admin.close()


async def ensure_topics(settings: CommonSettings) -> list[TopicCheck]:
    """Create the missing topics, then compare every topic with what is asked."""
    wanted = wanted_topics(settings)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS
    )
    await admin.start()
    try:
        created = await _create_missing(admin, wanted)
        layouts = await _layouts(admin, [spec.name for spec in wanted])
        reported = await _reported_configs(admin, wanted)
    finally:
        await admin.close()
    return [
        check_topic(spec, layouts.get(spec.name), reported.get(spec.name, {}), spec.name in created)
        for spec in wanted
    ]


def check_topic(
    spec: TopicSpec,
    partitions: Sequence[Mapping[str, Any]] | None,
    configs: Mapping[str, str],
    created: bool,
) -> TopicCheck:
    """Compare one topic's metadata (`partitions` as a metadata answer lists them) and
    reported configs with `spec`."""
    if not partitions:
        return TopicCheck(spec.name, created, ("not on the broker after creation",))
    differences = []
    if len(partitions) != spec.partitions:
        differences.append(f"partitions: {len(partitions)} on the broker, {spec.partitions} asked")
    replicas = min(len(partition.get("replicas") or ()) for partition in partitions)
    if replicas != spec.replication:
        differences.append(f"replication: {replicas} on the broker, {spec.replication} asked")
    unchecked = []
    for name, value in spec.configs.items():
        if name not in configs:
            unchecked.append(name)
        elif configs[name] != value:
            differences.append(f"{name}: {configs[name]} on the broker, {value} asked")
    return TopicCheck(spec.name, created, tuple(differences), tuple(unchecked))


async def _create_missing(admin: AIOKafkaAdminClient, wanted: Sequence[TopicSpec]) -> set[str]:
    """Create the topics of `wanted` the broker lacks; the names it created."""
    existing = set(await admin.list_topics())
    missing = [spec.new_topic() for spec in wanted if spec.name not in existing]
    if not missing:
        return set()
    try:
        answer = await admin.create_topics(missing)
    except TopicAlreadyExistsError:  # another process created them meanwhile
        return set()
    already = TopicAlreadyExistsError.errno
    created = set()
    for name, error_code, *rest in answer.topic_errors:
        if error_code == 0:
            created.add(str(name))
        elif error_code != already:
            message = f": {rest[0]}" if rest and rest[0] else ""
            raise TopicRefused(f"the broker refused to create {name} (error {error_code}{message})")
    return created


async def _layouts(
    admin: AIOKafkaAdminClient, names: Sequence[str]
) -> dict[str, Sequence[Mapping[str, Any]]]:
    """Each topic's partitions as the metadata lists them. A cluster answers for a topic it
    has just created only once its partitions have leaders: asked again meanwhile."""
    deadline = asyncio.get_running_loop().time() + METADATA_WAIT_SECONDS
    while True:
        layouts = {
            str(topic["topic"]): topic["partitions"]
            for topic in await admin.describe_topics(list(names))
            if topic.get("error_code", 0) == 0 and topic.get("partitions")
        }
        if len(layouts) == len(names) or asyncio.get_running_loop().time() > deadline:
            return layouts
        await asyncio.sleep(0.5)


async def _reported_configs(
    admin: AIOKafkaAdminClient, wanted: Sequence[TopicSpec]
) -> dict[str, dict[str, str]]:
    """The configs the broker reports for each topic; a topic it answers nothing (or an
    error) for is left out, and so is every topic when it cannot answer at all."""
    # all of each topic's configs: some brokers cannot parse a request naming them
    resources = [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in wanted]
    try:
        answers = await admin.describe_configs(resources)
    except KafkaError as error:
        log.info("the broker did not describe the topics' configs: %r", error)
        return {}
    reported: dict[str, dict[str, str]] = {}
    for answer in answers:
        for error_code, _message, _kind, name, entries in answer.resources:
            if error_code != 0:
                continue
            reported[str(name)] = {
                str(entry[0]): str(entry[1]) for entry in entries if entry[1] is not None
            }
    return reported
