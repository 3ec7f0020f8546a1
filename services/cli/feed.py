"""`drgwatch feed FILE`: send a file's events to the Kafka intake and say what became of them.

The events go to the intake topic with kafka-python, as a hospital's own script would
send them (keyed `hospital_id/case_id`); the intake answers each record on the results
topic, which this command reads from where it ended before the first send, matching the
answers to its records by partition and offset.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from tqdm import tqdm

from services.ingest.hl7.exceptions import ProfilesRefused
from services.ingest.hl7.profile import load_profiles
from services.ingest.intake.files import (
    FileFormat,
    FileRecord,
    FileUnreadable,
    LineProblem,
    guess_format,
    read_file,
)
from services.ingest.intake.records import SOURCE_HEADER
from services.settings import CommonSettings

SHOWN_REFUSALS = 10
SOURCE = b"drgwatch-feed"


def add_parser(commands: Any) -> None:
    feed = commands.add_parser(
        "feed", help="send a file of events to the Kafka intake and report what was taken"
    )
    feed.add_argument("file", type=Path, help="NDJSON, CSV or HL7 v2 (batch) file")
    feed.add_argument(
        "--format",
        choices=["ndjson", "csv", "hl7"],
        help="default: from the file's name (.csv, .hl7/.er7, else NDJSON)",
    )
    feed.add_argument(
        "--topic", help="the intake topic (default DRGWATCH_TOPIC_PREFIX-intake, drgwatch-intake)"
    )
    feed.add_argument(
        "--bootstrap", help="Kafka bootstrap servers (default DRGWATCH_KAFKA_BOOTSTRAP)"
    )
    feed.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds to wait for the intake's answers after the last send (default 60)",
    )
    feed.add_argument(
        "--profiles", type=Path, help="HL7 facility profiles (default: the shipped ones)"
    )


@dataclass
class Answers:
    """The intake's answers to the records sent, by (partition, offset)."""

    wanted: dict[tuple[int, int], FileRecord]
    found: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)

    def take(self, partition: int, offset: int, result: dict[str, Any]) -> None:
        # a record read again after an intake crash is answered twice; the first counts
        where = (partition, offset)
        if where in self.wanted and where not in self.found:
            self.found[where] = result

    @property
    def missing(self) -> int:
        return len(self.wanted) - len(self.found)


def run(args: argparse.Namespace) -> int:
    # kafka-python logs each connection at INFO; the command's own lines are what counts
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = CommonSettings()
    bootstrap = args.bootstrap or settings.kafka_bootstrap
    topic = args.topic or settings.intake_topic
    results_topic = f"{topic}-results"
    file_format: FileFormat = args.format or guess_format(args.file.name)
    try:
        raw = args.file.read_bytes()
        profiles = load_profiles(args.profiles) if file_format == "hl7" else None
        reads = read_file(raw, file_format, profiles=profiles, zone=settings.zone)
    except (OSError, FileUnreadable, ProfilesRefused) as error:
        print(f"drgwatch feed: {args.file}: {error}", file=sys.stderr)
        return 2
    problems = [read for read in reads if isinstance(read, LineProblem)]
    events = [read for read in reads if isinstance(read, FileRecord)]
    for problem in problems:
        print(f"{args.file}: {problem} (not sent)", file=sys.stderr)
    try:
        answers = _send(events, bootstrap, topic, results_topic, args.wait)
    except (KafkaError, _NoTopic) as error:
        print(f"drgwatch feed: {bootstrap}: {error}", file=sys.stderr)
        return 2
    return _report(args.file, problems, answers)


class _NoTopic(Exception):
    pass


def _send(
    events: list[FileRecord], bootstrap: str, topic: str, results_topic: str, wait: float
) -> Answers:
    # never auto-created: a broker would give a topic its own default partition count
    results = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        client_id="drgwatch-feed",
        allow_auto_create_topics=False,
    )
    try:
        partitions = results.partitions_for_topic(results_topic)
        if not partitions:
            raise _NoTopic(
                f"no topic {results_topic}: start drgwatch up, or run drgwatch topics create"
            )
        assigned = [TopicPartition(results_topic, partition) for partition in partitions]
        # where the answers start, fixed before anything is sent (end_offsets and seek:
        # seek_to_end's position lookup waits on a leader-epoch check tansu does not answer)
        ends = results.end_offsets(assigned)
        results.assign(assigned)
        for tp in assigned:
            results.seek(tp, ends[tp])
        answers = Answers(wanted=_produce(events, bootstrap, topic))
        deadline = time.monotonic() + wait
        with tqdm(
            total=len(answers.wanted), unit="answer", desc="answered", file=sys.stderr, disable=None
        ) as progress:
            while answers.missing and time.monotonic() < deadline:
                before = len(answers.found)
                for batch in results.poll(timeout_ms=500).values():
                    for message in batch:
                        try:
                            result = orjson.loads(message.value)
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(result, dict):
                            answers.take(
                                result.get("partition", -1), result.get("offset", -1), result
                            )
                progress.update(len(answers.found) - before)
        return answers
    finally:
        results.close()


def _produce(
    events: list[FileRecord], bootstrap: str, topic: str
) -> dict[tuple[int, int], FileRecord]:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        client_id="drgwatch-feed",
        allow_auto_create_topics=False,
        max_block_ms=15_000,
    )
    try:
        if not producer.partitions_for(topic):
            raise _NoTopic(f"no topic {topic}: start drgwatch up, or run drgwatch topics create")
        sent = []
        with tqdm(
            total=len(events), unit="event", desc="sent", file=sys.stderr, disable=None
        ) as progress:
            for event in events:
                future = producer.send(
                    topic,
                    key=event.key,
                    value=event.value,
                    headers=[(SOURCE_HEADER, SOURCE)],
                )
                future.add_callback(lambda _metadata: progress.update(1))
                sent.append((event, future))
            producer.flush()
        placed = {}
        for event, future in sent:
            metadata = future.get(timeout=30)
            placed[(metadata.partition, metadata.offset)] = event
        return placed
    finally:
        producer.close()


def _report(path: Path, problems: list[LineProblem], answers: Answers) -> int:
    """The summary on stdout; the exit code (1: anything refused, unread or unanswered)."""
    by_status: dict[str, int] = {"accepted": 0, "duplicate": 0, "refused": 0}
    refusals: list[str] = []
    for where, event in sorted(answers.wanted.items(), key=lambda item: item[1].line):
        result = answers.found.get(where)
        if result is None:
            continue
        status = str(result.get("status"))
        by_status[status] = by_status.get(status, 0) + 1
        if status == "refused":
            refusals.append(f"{event.unit} {event.line}: {result.get('reason')}")
    units = {read.unit for read in answers.wanted.values()}
    print(
        f"{path}: sent {len(answers.wanted)} {'messages' if units == {'message'} else 'events'}"
        + (f" ({len(problems)} not sent: unreadable)" if problems else "")
    )
    print(
        f"accepted {by_status['accepted']}, duplicate {by_status['duplicate']},"
        f" refused {by_status['refused']}"
    )
    for line in refusals[:SHOWN_REFUSALS]:
        print(f"  refused {line}")
    if len(refusals) > SHOWN_REFUSALS:
        print(f"  ... and {len(refusals) - SHOWN_REFUSALS} more (GET /v1/dead-letters)")
    if answers.missing:
        print(
            f"no answer within the wait for {answers.missing} events: is the intake running"
            " (drgwatch up, or drgwatch intake)?",
            file=sys.stderr,
        )
    return 1 if refusals or problems or answers.missing else 0
