"""The stream processors the benchmark compares, each run in a process of its own.

`python -m services.bench.contenders NAME CONFIG_JSON` consumes the workload's topic
from the beginning until it has processed `expect` messages, then writes a report
(JSON) to `report` and exits: when it processed the first and the last message, the
CPU time the process used in between (all its threads), and its peak resident memory.

- ceiling: a bare aiokafka consumer that decodes each message and sums per case;
- quix: a Quix Streams application doing the per-case stateful sum and threshold
  check, with its state in RocksDB behind a changelog topic and level changes
  produced to an output topic (a small shim lets it run on tansu, see `_quix_shim`);
- quix_core: drgwatch's pure core in a Quix Streams application: each record's seal
  checked, decoded and folded into its case as the worker's batch path does it (the same
  price book, with the shipped rules), the case state kept in Quix's RocksDB store as the
  bytes the worker's changelog holds, the alerts produced to an output topic; its final
  states and alerts are checked as drgwatch's are;
- naive_faust: a plain Faust agent, one event at a time, the same sum and check in a
  changelog-backed table, level changes sent to a topic;
- drgwatch: drgwatch's own worker, as `drgwatch worker` runs it (agent, table,
  projector into the database), its final case states written out for checking;
  with `share_file`, one of several workers in one group, reporting its progress.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson

from services.bench.workload import level_of

CENT = Decimal("0.01")


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Clock:
    """First and last processed message, and the report written when all are done."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.expect: int = config["expect"]
        self.report = Path(config["report"])
        self.count = 0
        self.first_at = 0.0
        self.first_cpu = 0.0
        self.done_at = 0.0
        self.done_cpu = 0.0

    def start(self, at: float | None = None) -> None:
        """The first message was received (before any was processed)."""
        if not self.first_at:
            self.first_at = at or time.time()
        if not self.first_cpu:
            self.first_cpu = time.process_time()

    def tick(self, processed: int = 1) -> bool:
        """Count processed messages; True once all of them are."""
        self.start()
        self.count += processed
        return self.count >= self.expect

    def stop(self) -> None:
        """The last message is done: what follows (gathering the report) is not timed."""
        if not self.done_at:
            self.done_at, self.done_cpu = time.time(), time.process_time()

    def finish(self, **extra: Any) -> None:
        self.stop()
        done_at, done_cpu = self.done_at, self.done_cpu
        self.report.write_bytes(
            orjson.dumps(
                {
                    "first_at": self.first_at,
                    "done_at": done_at,
                    "cpu_seconds": done_cpu - self.first_cpu,
                    "processed": self.count,
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                    **extra,
                }
            )
        )


class Standards:
    """The sample catalogue's standards, for the contenders' threshold check."""

    def __init__(self) -> None:
        from services.reference import service as catalogue_service

        sample = catalogue_service.sample_catalogue()
        self.weights = {group.drg_code: group.weight for group in sample.groups}
        self.rates = dict(sample.base_rates)

    def of(self, drg_code: str, scheme: str) -> Decimal:
        return (self.weights[drg_code] * self.rates[scheme]).quantize(CENT, ROUND_HALF_UP)


def fold(state: dict[str, Any], event: dict[str, Any], standards: Standards) -> str | None:
    """The peers' per-case step: sum the line, re-check the level; the new level if it moved."""
    kind = event["type"]
    if kind == "admitted":
        state["drg"], state["scheme"] = event["drg_code"], event["insurance_scheme"]
    elif kind == "drg_assigned":
        state["drg"] = event["drg_code"]
    elif kind in ("charge", "credit"):
        amount = Decimal(event["amount"])
        total = Decimal(state.get("total", "0"))
        state["total"] = str(total + amount if kind == "charge" else total - amount)
    if "drg" not in state:
        return None
    level = level_of(Decimal(state.get("total", "0")), standards.of(state["drg"], state["scheme"]))
    if level == state.get("level", "none"):
        return None
    state["level"] = level
    return level


async def ceiling(config: dict[str, Any]) -> None:
    from aiokafka import AIOKafkaConsumer

    clock = Clock(config)
    consumer = AIOKafkaConsumer(
        config["topic"],
        bootstrap_servers=config["bootstrap"],
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    totals: dict[bytes, Decimal] = defaultdict(Decimal)
    try:
        done = False
        while not done:
            batches = await consumer.getmany(timeout_ms=100, max_records=20_000)
            if batches:
                clock.start()
            for records in batches.values():
                for record in records:
                    event = orjson.loads(record.value)
                    kind = event["type"]
                    if kind == "charge":
                        totals[record.key] += Decimal(event["amount"])
                    elif kind == "credit":
                        totals[record.key] -= Decimal(event["amount"])
                done = clock.tick(len(records)) or done
    finally:
        await consumer.stop()
    clock.finish(cases=len(totals))


def naive_faust(config: dict[str, Any]) -> None:
    import faust
    from faust.worker import Worker

    clock = Clock(config)
    standards = Standards()
    app = faust.App(
        f"{config['prefix']}-naive",
        broker=f"kafka://{config['bootstrap']}",
        store="memory://",
        topic_partitions=config["partitions"],
        broker_rebalance_timeout=3.0,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        web_enabled=False,
    )
    events = app.topic(config["topic"], key_type=bytes, value_type=bytes, value_serializer="raw")
    levels = app.topic(f"{config['prefix']}-naive-levels", value_serializer="raw")
    table = app.Table("cases", default=dict, partitions=config["partitions"])

    @app.agent(events)
    async def add(stream: Any) -> None:
        async for event in stream.events():
            clock.start()
            state = dict(table[event.key])
            moved = fold(state, orjson.loads(event.value), standards)
            table[event.key] = state
            if moved:
                await levels.send(key=event.key, value=moved.encode())
            if clock.tick():
                clock.finish(cases=len(table))
                os._exit(0)

    Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def quix(config: dict[str, Any]) -> None:
    from quixstreams import Application

    _quix_shim()
    clock = Clock(config)
    standards = Standards()
    app = Application(
        broker_address=config["bootstrap"],
        consumer_group=f"{config['prefix']}-quix",
        auto_offset_reset="earliest",
        state_dir=config["state_dir"],
        loglevel="WARNING",
        # short group timeouts, as the other contenders have: with librdkafka's
        # defaults the first group join on tansu waits out a long rebalance timeout
        consumer_extra_config={"session.timeout.ms": 6000, "max.poll.interval.ms": 10000},
    )
    events = app.topic(config["topic"], key_deserializer="bytes", value_deserializer="json")
    levels = app.topic(f"{config['prefix']}-quix-levels", value_serializer="json")
    frame = app.dataframe(events)

    def step(event: dict[str, Any], state: Any) -> dict[str, Any]:
        clock.start()
        case = state.get("case", {})
        moved = fold(case, event, standards)
        state.set("case", case)
        if clock.tick():
            app.stop()
        return {"level": moved}

    frame = frame.apply(step, stateful=True)
    frame = frame.filter(lambda value: value["level"] is not None)
    frame.to_topic(levels)
    app.run()
    clock.finish()


def quix_core(config: dict[str, Any]) -> None:
    from quixstreams import Application

    from services.alerting.settings import WorkerSettings
    from services.bench.quixcore import CoreStep, worker_reference

    _quix_shim()
    clock = Clock(config)
    settings = WorkerSettings()
    core = CoreStep(*asyncio.run(worker_reference(settings)), settings)
    app = Application(
        broker_address=config["bootstrap"],
        consumer_group=f"{config['prefix']}-quix-core",
        auto_offset_reset="earliest",
        state_dir=config["state_dir"],
        loglevel="WARNING",
        consumer_extra_config={"session.timeout.ms": 6000, "max.poll.interval.ms": 10000},
    )
    events = app.topic(config["topic"], key_deserializer="bytes", value_deserializer="bytes")
    alerts = app.topic(config["alerts_topic"], key_serializer="bytes", value_serializer="bytes")
    frame = app.dataframe(events)

    def step(value: bytes, key: bytes, _timestamp: int, headers: Any, state: Any) -> list[bytes]:
        clock.start()
        raised = core(key, value, headers, state)
        if clock.tick():
            app.stop()
        return raised

    frame = frame.apply(step, stateful=True, metadata=True, expand=True)
    frame.to_topic(alerts)
    app.run()
    clock.stop()
    clock.finish(cases=core.cases(), unprocessable=core.unprocessable)


def _quix_shim() -> None:
    """tansu answers DescribeConfigs with no entries; Quix derives its changelog from them.

    Benchmark-only. Quix reads every topic's configuration back and takes the source
    topic's `retention.ms` and `retention.bytes` for the changelog it creates; with no
    entries it fails. The shim fills in Apache Kafka's defaults for entries tansu left
    out, which is what a Kafka broker would have answered for these topics.
    """
    from quixstreams.models.topics import admin

    kafka_defaults = {
        "retention.ms": "604800000",
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
    }
    original = admin.TopicAdmin.inspect_topics

    def inspect_topics(self: Any, topic_names: list[str], timeout: float = 30) -> Any:
        found = original(self, topic_names, timeout)
        for config in found.values():
            if config is not None:
                for name, value in kafka_defaults.items():
                    config.extra_config.setdefault(name, value)
        return found

    setattr(admin.TopicAdmin, "inspect_topics", inspect_topics)  # noqa: B010


def drgwatch(config: dict[str, Any]) -> None:
    from services.alerting.settings import WorkerSettings
    from services.alerting.worker import create_worker, run

    clock = Clock(config)
    worker_app = create_worker(WorkerSettings())
    progress = worker_app.progress
    _note_first_cpu(worker_app.app, clock)

    share = config.get("share_file")  # one of several workers: report, never finish
    last_applied_at = 0.0

    async def _watch() -> None:
        nonlocal last_applied_at
        if progress.first_batch_at:
            clock.start(progress.first_batch_at)
        if progress.applied > clock.count:
            clock.tick(progress.applied - clock.count)
            last_applied_at = time.time()
        if share:
            report = {
                "applied": progress.applied,
                "first_at": progress.first_batch_at,
                "last_at": last_applied_at,
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
            Path(f"{share}.new").write_bytes(orjson.dumps(report))
            os.replace(f"{share}.new", share)  # the reader never sees half a report
            return
        if clock.count >= clock.expect:
            await worker_app.app.producer.flush()  # the alerts sent after the last batch
            clock.stop()
            states = {key: worker_app.case_state(key) for key in list(worker_app.cases.data)}
            cases = {
                key.decode(): {
                    "total_cost": state["total_cost"],
                    "level": state["level"],
                    "events_applied": state["events_applied"],
                }
                for key, state in states.items()
                if state
            }
            clock.finish(cases=cases, batches=progress.batches)
            os._exit(0)

    worker_app.app.timer(0.02)(_watch)
    run(worker_app)


def _note_first_cpu(app: Any, clock: Clock) -> None:
    """The worker's CPU clock as its first batch begins: the watch below runs only
    between batches, after the first one's CPU time is spent."""
    from services.alerting import transport

    handlers = transport._batch_handlers(app)  # noqa: SLF001 - the benchmark's own probe
    for topic, handler in list(handlers.items()):

        async def noted(messages: Any, handler: Any = handler) -> None:
            if not clock.first_cpu:
                clock.first_cpu = time.process_time()
            await handler(messages)

        handlers[topic] = noted


RUNNERS = {
    "ceiling": ceiling,
    "quix": quix,
    "quix_core": quix_core,
    "naive_faust": naive_faust,
    "drgwatch": drgwatch,
}


def main() -> None:
    name, config = sys.argv[1], orjson.loads(sys.argv[2])
    sys.argv = sys.argv[:1]  # Faust's worker reads its own command line
    runner = RUNNERS[name]
    if asyncio.iscoroutinefunction(runner):
        asyncio.run(runner(config))
    else:
        runner(config)


if __name__ == "__main__":
    main()
