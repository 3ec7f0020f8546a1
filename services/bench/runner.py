"""`drgwatch bench`: the same workload through every contender on one embedded broker.

One tansu broker, one topic holding the workload, then each contender in a process of
its own (one at a time, so none competes with another for the two cores), each from
the beginning of the topic with its own consumer group and state. Throughput is
messages processed per second between the first and the last message a contender
processed (its start-up and group join left out, the same for all). drgwatch's final
case states and the alerts it produced are checked against the workload's recount.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.bench import workload as bench_workload
from services.settings import CommonSettings

CONTENDERS = ("ceiling", "quix", "naive_faust", "drgwatch", "drgwatch_x2")
LABELS = {
    "ceiling": "bare aiokafka (decode + sum)",
    "quix": "Quix Streams (stateful sum + check)",
    "naive_faust": "plain Faust agent + table",
    "drgwatch": "drgwatch worker",
    "drgwatch_x2": "two drgwatch workers, one group",
}


@dataclass
class Plan:
    lines: int
    cases: int
    partitions: int = 8
    contenders: tuple[str, ...] = CONTENDERS
    timeout: float = 600.0
    seed: int = 11


@dataclass
class Outcome:
    name: str
    processed: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    error: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


async def produce(bootstrap: str, topic: str, messages: list[bench_workload.Message]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        pending = []
        for message in messages:
            pending.append(
                await producer.send(topic, message.value, key=message.key, headers=message.headers)
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every record of a topic, partition by partition, in offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(position >= ends[tp] for position, tp in zip(positions, tps, strict=True)):
                break
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend((r.key or b"", r.value or b"") for r in batch)
        # tansu may report an end short of the last batch: read until a poll brings nothing
        while batches := await consumer.getmany(timeout_ms=500):
            for batch in batches.values():
                records.extend((r.key or b"", r.value or b"") for r in batch)
        return records
    finally:
        await consumer.stop()


def run_contender(
    name: str, config: dict[str, Any], env: dict[str, str], timeout: float, log: Path
) -> Outcome:
    report = Path(config["report"])
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.bench.contenders", name, orjson.dumps(config)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return Outcome(name, error=f"did not finish within {timeout:.0f}s (log: {log})")
    if not report.exists():
        return Outcome(name, error=f"exited with {process.returncode} (log: {log})")
    data = orjson.loads(report.read_bytes())
    return Outcome(
        name,
        processed=data["processed"],
        seconds=data["done_at"] - data["first_at"],
        peak_rss_mb=data["peak_rss_mb"],
        report=data,
    )


def run_workers(
    count: int, config: dict[str, Any], env: dict[str, str], timeout: float, work: Path
) -> Outcome:
    """Several drgwatch workers in one consumer group; until together they applied all."""
    shares = [work / f"drgwatch_x{count}-{n}.json" for n in range(count)]
    processes = []
    for n, share in enumerate(shares):
        log = (work / f"drgwatch_x{count}-{n}.log").open("ab")
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.bench.contenders",
                    "drgwatch",
                    orjson.dumps({**config, "share_file": str(share)}),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            reports = [orjson.loads(f.read_bytes()) for f in shares if f.exists()]
            applied = sum(r["applied"] for r in reports)
            if len(reports) == count and applied >= config["expect"]:
                first = min(r["first_at"] for r in reports if r["first_at"])
                last = max(r["last_at"] for r in reports)
                return Outcome(
                    f"drgwatch_x{count}",
                    processed=applied,
                    seconds=last - first,
                    peak_rss_mb=max(r["peak_rss_mb"] for r in reports),
                    report={"per_worker": [r["applied"] for r in reports]},
                )
            if any(p.poll() is not None for p in processes):
                return Outcome(f"drgwatch_x{count}", error=f"a worker exited (logs in {work})")
            time.sleep(0.05)
        return Outcome(f"drgwatch_x{count}", error=f"not done within {timeout:.0f}s")
    finally:
        for process in processes:
            process.kill()
            process.wait()


def check_drgwatch(
    outcome: Outcome, expected: dict[str, bench_workload.ExpectedCase], alerts: list[Any]
) -> list[str]:
    """Differences between drgwatch's result and the recount (empty: exactly right)."""
    problems: list[str] = []
    cases = outcome.report.get("cases", {})
    if set(cases) != set(expected):
        problems.append(f"{len(set(expected) ^ set(cases))} cases missing or unexpected")
    for key, want in expected.items():
        got = cases.get(key)
        if got is None:
            continue
        if Decimal(got["total_cost"]) != want.total:
            problems.append(f"{key}: total {got['total_cost']} != {want.total}")
        if got["level"] != want.level:
            problems.append(f"{key}: level {got['level']} != {want.level}")
        if got["events_applied"] != want.events:
            problems.append(f"{key}: {got['events_applied']} events applied != {want.events}")
    # the alerts topic is at-least-once (consumers keep one alert per id): a record
    # repeated with the same id is a redelivery, two ids for one transition a defect
    raised: dict[str, list[tuple[str, str]]] = defaultdict(list)
    ids: set[str] = set()
    forecasts = 0
    for key, value in alerts:
        alert = orjson.loads(value)
        if alert["alert_id"] in ids:
            continue
        ids.add(alert["alert_id"])
        if alert.get("kind", "level") != "level":
            forecasts += 1  # a projection's warning, not a level transition the recount knows
            continue
        raised[key.decode()].append((alert["previous_level"], alert["level"]))
    outcome.report["forecast_alerts"] = forecasts
    if len(ids) != len(alerts):
        outcome.report["alert_records_repeated"] = len(alerts) - len(ids)
    for key, want in expected.items():
        if raised.get(key, []) != want.transitions:
            problems.append(f"{key}: alerts {raised.get(key, [])} != {want.transitions}")
    return problems


def bench(plan: Plan, out: Path | None = None, *, echo: Any = print) -> dict[str, Any]:
    from services.ports import on_a_free_port
    from services.stack import prepare_database, start_broker
    from services.supervisor import stop_child
    from services.topics import create_topics

    work = Path(tempfile.mkdtemp(prefix="drgwatch-bench-"))
    echo(f"generating {plan.lines:,} lines over {plan.cases:,} cases ...")
    load = bench_workload.generate(plan.lines, plan.cases, seed=plan.seed)
    expected = bench_workload.expected(load)
    port, broker = on_a_free_port(lambda port: start_broker(port, work / "broker.log"))
    bootstrap = f"127.0.0.1:{port}"
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = CommonSettings(
        data_dir=work,
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        topic_partitions=plan.partitions,
    )
    outcomes: dict[str, Outcome] = {}
    problems: list[str] = []
    try:
        asyncio.run(create_topics(settings))
        asyncio.run(prepare_database(settings, replay_ledger=False))
        started = time.monotonic()
        asyncio.run(produce(bootstrap, settings.events_topic, load.messages))
        echo(
            f"{load.events:,} messages ({load.lines:,} charge and credit lines) on "
            f"{plan.partitions} partitions in {time.monotonic() - started:.1f}s"
        )
        env = dict(os.environ)
        env.update(
            DRGWATCH_MODE="embedded",
            DRGWATCH_DATA_DIR=str(work),
            DRGWATCH_KAFKA_BOOTSTRAP=bootstrap,
            DRGWATCH_TOPIC_PREFIX=prefix,
            DRGWATCH_TOPIC_PARTITIONS=str(plan.partitions),
        )
        for name in plan.contenders:
            config = {
                "bootstrap": bootstrap,
                "topic": settings.events_topic,
                "prefix": prefix,
                "partitions": plan.partitions,
                "expect": load.events,
                "report": str(work / f"{name}.json"),
                "state_dir": str(work / f"{name}-state"),
            }
            echo(f"running {LABELS[name]} ...")
            if name == "drgwatch_x2":  # topics and group of their own, the same workload
                group = settings.model_copy(update={"topic_prefix": f"{prefix}x2"})
                asyncio.run(create_topics(group))
                asyncio.run(produce(bootstrap, group.events_topic, load.messages))
                config.update(prefix=group.topic_prefix, topic=group.events_topic)
                env2 = {**env, "DRGWATCH_TOPIC_PREFIX": group.topic_prefix}
                outcome = run_workers(2, config, env2, plan.timeout, work)
            else:
                outcome = run_contender(name, config, env, plan.timeout, work / f"{name}.log")
            outcomes[name] = outcome
            echo(
                f"  {outcome.per_second:,.0f} messages/s"
                if outcome.error is None
                else f"  failed: {outcome.error}"
            )
        if "drgwatch" in outcomes and outcomes["drgwatch"].error is None:
            alerts = asyncio.run(read_topic(bootstrap, settings.alerts_topic))
            problems = check_drgwatch(outcomes["drgwatch"], expected, alerts)
    finally:
        stop_child(broker)
    result = summarise(plan, load, outcomes, problems)
    if out is not None:
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return result


def summarise(
    plan: Plan,
    load: bench_workload.Workload,
    outcomes: dict[str, Outcome],
    problems: list[str],
) -> dict[str, Any]:
    drgwatch = outcomes.get("drgwatch")
    rates = {name: round(o.per_second) for name, o in outcomes.items() if o.error is None}
    ratios = {}
    if "drgwatch" in rates:
        for peer in ("quix", "naive_faust", "ceiling"):
            if rates.get(peer):
                ratios[f"drgwatch_vs_{peer}"] = round(rates["drgwatch"] / rates[peer], 3)
        if rates.get("drgwatch_x2"):
            ratios["two_workers_vs_one"] = round(rates["drgwatch_x2"] / rates["drgwatch"], 3)
    return {
        "workload": {
            "messages": load.events,
            "lines": load.lines,
            "cases": plan.cases,
            "partitions": plan.partitions,
            "seed": plan.seed,
        },
        "lines_per_s": rates,
        "ratios": ratios,
        "seconds": {n: round(o.seconds, 3) for n, o in outcomes.items() if o.error is None},
        "peak_rss_mb": {n: o.peak_rss_mb for n, o in outcomes.items() if o.error is None},
        "errors": {n: o.error for n, o in outcomes.items() if o.error is not None},
        "correct": drgwatch is not None and drgwatch.error is None and not problems,
        "problems": problems[:50],
        "latency_ms": {},
    }


def table(result: dict[str, Any]) -> str:
    rows = [f"{'contender':<40} {'messages/s':>12} {'seconds':>9} {'peak RSS MB':>12}"]
    for name in CONTENDERS:
        if name in result["lines_per_s"]:
            rows.append(
                f"{LABELS[name]:<40} {result['lines_per_s'][name]:>12,} "
                f"{result['seconds'][name]:>9.2f} {result['peak_rss_mb'][name]:>12.0f}"
            )
        elif name in result["errors"]:
            rows.append(f"{LABELS[name]:<40} failed: {result['errors'][name]}")
    for name, ratio in result["ratios"].items():
        rows.append(f"{name:<40} {ratio:>12.2f}x")
    rows.append(f"drgwatch exactly correct: {result['correct']}")
    rows.extend(f"  {problem}" for problem in result["problems"][:10])
    full = result.get("full_path")
    if full:
        throughput = full["throughput"]
        rows += [
            f"full path ({full['database']}): HTTP ingest -> queryable state "
            f"{throughput['lines_per_s']:,} lines/s ({throughput['lines']:,} lines in "
            f"{throughput['seconds']}s; ingest alone {throughput['ingest_only_lines_per_s']:,}/s)",
            f"202 -> alert on the live stream at {full['alert_latency']['offered_lines_per_s']:,}"
            f" lines/s offered ({full['alert_latency']['alerts']} alerts): "
            f"{full['alert_latency']['latency_ms']} ms",
            f"case lookup with {full['worker_rss_mb']['open_cases']:,} open cases at "
            f"{full['case_lookup']['requests_per_s']}/s: {full['case_lookup']['latency_ms']} ms",
            f"worker RSS with {full['worker_rss_mb']['open_cases']:,} open cases: "
            f"{full['worker_rss_mb']['rss_mb']} MB",
        ]
        if "restart" in full:
            rows.append(
                f"worker SIGKILL and restart with {full['restart']['open_cases']:,} open cases: "
                f"ready {full['restart']['ready_s']}s, fresh event visible "
                f"{full['restart']['fresh_event_visible_s']}s after the kill"
            )
    return "\n".join(rows)
