"""`drgwatch topics ensure` (also `drgwatch topics create`): the Kafka topics drgwatch uses.

Creates the missing topics with DRGWATCH_TOPIC_PARTITIONS, _REPLICATION and their
configs, then checks every topic against the settings; one line per topic. Nothing
on an existing topic is changed. Exit status: 0 every topic as asked (configs the
broker does not report are named, not held against it); 1 a topic differs from what is
asked (a `WARNING` line says how); 2 the settings are invalid, the broker cannot be
reached, or it refused to create a topic.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from services.settings import CommonSettings
from services.topics import TopicCheck, TopicRefused, ensure_topics
from services.validation import field_errors, summary


def run() -> int:
    try:
        settings = CommonSettings()
    except ValidationError as error:
        print(
            f"drgwatch topics: DRGWATCH_* settings: {summary(field_errors(error))}", file=sys.stderr
        )
        return 2
    try:
        checks = asyncio.run(ensure_topics(settings))
    except (KafkaError, OSError, TopicRefused) as error:
        print(
            f"drgwatch topics: {settings.kafka_bootstrap}: {error or type(error).__name__}",
            file=sys.stderr,
        )
        return 2
    for check in checks:
        print(describe(check))
    differing = [check.name for check in checks if check.differences]
    if differing:
        print(
            f"drgwatch topics: {len(differing)} topic(s) differ from the settings and were left"
            " as they are: change the settings to match, or recreate the topics (partitions"
            " fix which cases share a worker: see the README's topic table)",
            file=sys.stderr,
        )
        return 1
    return 0


def describe(check: TopicCheck) -> str:
    """One line: created / as asked / WARNING and what differs; plus unchecked configs."""
    if check.differences:
        line = f"WARNING {check.name}: " + "; ".join(check.differences)
    elif check.created:
        line = f"{check.name}: created"
    else:
        line = f"{check.name}: as asked"
    if check.unchecked:
        unreported = ", ".join(check.unchecked)
        line += f" (configs not checked, the broker did not report them: {unreported})"
    return line
