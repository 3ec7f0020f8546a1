"""Topics are created with drgwatch's partition counts and configs before any client can
auto-create them; `drgwatch topics ensure` checks existing ones against the settings."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.ports import on_a_free_port, spare_port
from services.settings import CommonSettings
from services.stack import start_broker
from services.supervisor import stop_child
from services.topics import create_topics, ensure_topics, wanted_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One tansu broker for the module; each test uses topics of its own prefix."""
    log_path = tmp_path_factory.mktemp("broker") / "broker.log"
    port, broker = on_a_free_port(lambda port: start_broker(port, log_path))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_child(broker)


def settings_on(bootstrap: str, **overrides: object) -> CommonSettings:
    # six is neither tansu's default for auto-created topics (four) nor one
    fields: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "topic_partitions": 6,
        "topic_prefix": f"t{uuid.uuid4().hex[:8]}",
    }
    return CommonSettings(**(fields | overrides))  # type: ignore[arg-type]


def run_ensure(
    settings: CommonSettings, *, action: str = "ensure"
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        DRGWATCH_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        DRGWATCH_TOPIC_PREFIX=settings.topic_prefix,
        DRGWATCH_TOPIC_PARTITIONS=str(settings.topic_partitions),
        DRGWATCH_TOPIC_REPLICATION=str(settings.topic_replication),
    )
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "topics", action],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def make_topic(bootstrap: str, name: str, partitions: int) -> None:
    """A topic made by someone else, with no configs of drgwatch's."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def test_every_topic_gets_its_partition_count_not_the_broker_default(bootstrap: str) -> None:
    settings = settings_on(bootstrap)

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

    assert asyncio.run(partition_counts()) == {
        settings.events_topic: 6,
        settings.alerts_topic: 6,
        settings.dead_letter_topic: 1,
        settings.intake_topic: 6,
        settings.intake_results_topic: 6,
        settings.case_changelog_topic: 6,
    }


def test_ensure_creates_with_configs_then_finds_every_topic_as_asked(bootstrap: str) -> None:
    settings = settings_on(bootstrap, topic_retention_hours=48)
    first = asyncio.run(ensure_topics(settings))
    again = asyncio.run(ensure_topics(settings))

    names = [spec.name for spec in wanted_topics(settings)]
    assert [check.name for check in first] == names
    assert all(check.created for check in first)
    assert not any(check.created for check in again)
    # the broker reports the configs set at creation, and they are the ones asked
    for check in first + again:
        assert check.differences == (), check
        assert check.unchecked == (), check


def test_ensure_warns_of_a_topic_that_differs_and_leaves_it(bootstrap: str) -> None:
    settings = settings_on(bootstrap)
    asyncio.run(make_topic(bootstrap, settings.alerts_topic, 3))

    answer = run_ensure(settings)

    assert answer.returncode == 1, answer.stderr
    lines = answer.stdout.splitlines()
    (alerts,) = [line for line in lines if settings.alerts_topic in line]
    assert alerts.startswith(
        f"WARNING {settings.alerts_topic}: partitions: 3 on the broker, 6 asked"
    )
    # tansu answers nothing for the configs of a topic created without any: said, not failed
    assert "configs not checked" in alerts and "min.insync.replicas" in alerts
    assert f"{settings.events_topic}: created" in lines
    assert "1 topic(s) differ" in answer.stderr
    checks = {check.name: check for check in asyncio.run(ensure_topics(settings))}
    assert checks[settings.alerts_topic].differences == ("partitions: 3 on the broker, 6 asked",)


def test_create_is_ensure_by_another_name_and_replication_is_checked(bootstrap: str) -> None:
    settings = settings_on(bootstrap)
    assert run_ensure(settings, action="create").returncode == 0
    answer = run_ensure(settings)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert answer.stdout.count(": as asked") == len(wanted_topics(settings))

    # one tansu broker keeps one replica whatever is asked
    three = settings.model_copy(update={"topic_replication": 3})
    answer = run_ensure(three)
    assert answer.returncode == 1
    assert (
        f"WARNING {settings.events_topic}: replication: 1 on the broker, 3 asked" in answer.stdout
    )


def test_ensure_without_a_broker_says_so_in_one_line() -> None:
    settings = CommonSettings(kafka_bootstrap=f"127.0.0.1:{spare_port()}")
    answer = run_ensure(settings)
    assert answer.returncode == 2
    assert (
        answer.stderr.strip()
        .splitlines()[-1]
        .startswith(f"drgwatch topics: {settings.kafka_bootstrap}:")
    )
