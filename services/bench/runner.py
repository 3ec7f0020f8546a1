"""`drgwatch bench`: the same workload through every contender on one embedded broker.

One tansu broker, one topic holding the workload, then each contender in a process of
its own (one at a time, so none competes with another for the two cores), each from
the beginning of the topic with its own consumer group and state. Throughput is
messages processed per second between the first and the last message a contender
processed (its start-up and group join left out, the same for all). drgwatch's worker
runs twice, with the shipped monitoring rules (as it ships) and with none, each on
topics, a group and a database of its own, so that the rules' cost is a ratio within
the run. Its final case states and the alerts it produced are checked against the
workload's recount (and the rules' findings against the recount of those it can do),
and so are those of drgwatch's core run inside Quix Streams (`quix_core`), whose
throughput beside the worker's and Quix's splits the gap to Quix into the shell's part
and the core's.
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
from services.casecost.rules import RULE_NAMESPACE
from services.reference.rules import DEFAULT_RULES_DIR
from services.settings import CommonSettings
from services.storage.engine import make_engine, session_factory
from services.storage.seal import load_seal
from services.wire import EventSeal

CONTENDERS = (
    "ceiling",
    "quix",
    "quix_core",
    "naive_faust",
    "drgwatch",
    "drgwatch_no_rules",
    "drgwatch_one_partition",
    "drgwatch_x2",
)
LABELS = {
    "ceiling": "bare aiokafka (decode + sum)",
    "quix": "Quix Streams (stateful sum + check)",
    "quix_core": "Quix Streams + drgwatch's core",
    "naive_faust": "plain Faust agent + table",
    "drgwatch": "drgwatch worker (shipped rules)",
    "drgwatch_no_rules": "drgwatch worker, no rules",
    "drgwatch_one_partition": "drgwatch worker, one partition",
    "drgwatch_x2": "two drgwatch workers, one group",
}
# a rules file with no rules, for the worker's run without them
NO_RULES = "# the benchmark's worker without monitoring rules\nversion: 1\nrules: []\n"


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
    cpu_seconds: float = 0.0  # the contender's process, between its first and last message
    error: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


async def produce(
    bootstrap: str, topic: str, messages: list[bench_workload.Message], seal: EventSeal
) -> None:
    """The workload into the events topic, sealed as the ingest ledger's publisher seals
    it (drgwatch's worker refuses records without the seal; the others ignore headers)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        pending = []
        for message in messages:
            pending.append(
                await producer.send(
                    topic,
                    message.value,
                    key=message.key,
                    headers=seal.headers(message.key, message.value, message.case_seq),
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def database_seal(settings: CommonSettings) -> EventSeal:
    """The events topic's seal with the key of the settings' database."""
    engine = make_engine(settings.resolved_database_url)
    try:
        return await load_seal(session_factory(engine))
    finally:
        await engine.dispose()


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
        cpu_seconds=data.get("cpu_seconds", 0.0),
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
    outcome: Outcome,
    expected: dict[str, bench_workload.ExpectedCase],
    alerts: list[Any],
    findings: bench_workload.ExpectedFindings | None = None,
) -> list[str]:
    """Differences between drgwatch's result and the recount (empty: exactly right).

    Level alerts are compared with the recount's transitions. Rule findings (`kind`
    "rule", only with `findings`: the run with the shipped rules) must each be well
    formed (the alert id the rule, case and period give; a shipped case rule at its
    version and severity) and be raised once per rule, case and period; those of the
    rules the recount redoes (`findings.rules`) must be exactly the recount's.
    """
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
    found: dict[tuple[str, int, str, str], str] = {}  # (rule, version, case, period) -> id
    for key, value in alerts:
        alert = orjson.loads(value)
        if alert["alert_id"] in ids:
            continue
        ids.add(alert["alert_id"])
        kind = alert.get("kind", "level")
        if kind == "rule" and findings is not None:
            problems.extend(_check_finding(key.decode(), alert, findings, found))
            continue
        if kind != "level":
            forecasts += 1  # a projection's warning, not a level transition the recount knows
            continue
        raised[key.decode()].append((alert["previous_level"], alert["level"]))
    outcome.report["forecast_alerts"] = forecasts
    if findings is not None:
        by_rule: dict[str, int] = defaultdict(int)
        for rule_id, _, _, _ in found:
            by_rule[rule_id] += 1
        outcome.report["rule_alerts"] = dict(sorted(by_rule.items()))
        recounted = [rule for rule in sorted(findings.expected) if rule in findings.rules]
        outcome.report["rules_recounted"] = [f"{rule}@{version}" for rule, version in recounted]
        for rule_id, version in recounted:
            wanted = findings.expected[rule_id, version]
            got = {(case, period) for (r, v, case, period) in found if (r, v) == (rule_id, version)}
            if got != wanted:
                problems.append(
                    f"rule {rule_id}@{version}: {len(wanted - got)} findings missing, "
                    f"{len(got - wanted)} unexpected (e.g. {sorted(wanted ^ got)[:3]})"
                )
    if len(ids) != len(alerts):
        outcome.report["alert_records_repeated"] = len(alerts) - len(ids)
    for key, want in expected.items():
        if raised.get(key, []) != want.transitions:
            problems.append(f"{key}: alerts {raised.get(key, [])} != {want.transitions}")
    return problems


def _check_finding(
    key: str,
    alert: dict[str, Any],
    findings: bench_workload.ExpectedFindings,
    found: dict[tuple[str, int, str, str], str],
) -> list[str]:
    """A rule finding's own problems; records it in `found` (by rule, version, case, period)."""
    required = ("rule_id", "rule_version", "period", "hospital_id", "case_id", "level")
    if any(alert.get(name) in (None, "") for name in required):
        return [f"{key}: rule alert {alert['alert_id']} lacks one of {required}"]
    rule_id, version = alert["rule_id"], alert["rule_version"]
    problems = []
    severity = findings.rules.get((rule_id, version))
    if severity is None:
        problems.append(f"{key}: rule alert of {rule_id}@{version}, not a shipped case rule")
    elif alert["level"] != severity or alert.get("severity") != severity:
        problems.append(f"{key}: {rule_id} raised at {alert['level']}, its severity {severity}")
    if f"{alert['hospital_id']}/{alert['case_id']}" != key:
        problems.append(f"{key}: rule alert {alert['alert_id']} names another case")
    if alert.get("transition") != "raised" or not alert.get("text_zh") or not alert.get("text_en"):
        problems.append(f"{key}: rule alert {alert['alert_id']} is not a raised finding with texts")
    # the id is the rule's version, the case and the period: one finding, one id
    name = f"{rule_id}/{version}/{key}/{alert['period']}"
    if alert["alert_id"] != str(uuid.uuid5(RULE_NAMESPACE, name)):
        problems.append(f"{key}: rule alert {alert['alert_id']} is not the id of {name}")
    slot = (rule_id, version, key, alert["period"])
    if slot in found:
        problems.append(f"{key}: {rule_id} raised twice for {alert['period']}")
    found[slot] = alert["alert_id"]
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
    exact: dict[str, bool] = {}  # each checked contender: its result exactly the recount's
    try:
        asyncio.run(create_topics(settings))
        asyncio.run(prepare_database(settings, replay_ledger=False))
        seal = asyncio.run(database_seal(settings))
        started = time.monotonic()
        asyncio.run(produce(bootstrap, settings.events_topic, load.messages, seal))
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
            DRGWATCH_RULES_DIR=str(DEFAULT_RULES_DIR),  # the worker as it ships
        )
        no_rules = work / "no-rules.yaml"
        no_rules.write_text(NO_RULES, encoding="utf-8")
        # the contenders whose states and alerts are checked, and the topics of their alerts
        alerts_topics = {
            "drgwatch": settings.alerts_topic,
            "quix_core": f"{prefix}-quix-core-alerts",
        }
        for name in plan.contenders:
            config = {
                "bootstrap": bootstrap,
                "topic": settings.events_topic,
                "prefix": prefix,
                "partitions": plan.partitions,
                "expect": load.events,
                "report": str(work / f"{name}.json"),
                "state_dir": str(work / f"{name}-state"),
                "alerts_topic": alerts_topics.get(name, ""),
            }
            echo(f"running {LABELS[name]} ...")
            if name == "drgwatch_x2":  # topics and group of their own, the same workload
                group = settings.model_copy(update={"topic_prefix": f"{prefix}x2"})
                asyncio.run(create_topics(group))
                asyncio.run(produce(bootstrap, group.events_topic, load.messages, seal))
                config.update(prefix=group.topic_prefix, topic=group.events_topic)
                env2 = {**env, "DRGWATCH_TOPIC_PREFIX": group.topic_prefix}
                outcome = run_workers(2, config, env2, plan.timeout, work)
            elif name in ("drgwatch_no_rules", "drgwatch_one_partition"):
                # the same worker and workload, without rules or on one partition: topics,
                # group and (embedded) database of its own, so that no run finds another's work
                one = name == "drgwatch_one_partition"
                own = settings.model_copy(
                    update={
                        "topic_prefix": f"{prefix}{'p1' if one else 'nr'}",
                        "data_dir": work / name,
                        "topic_partitions": 1 if one else plan.partitions,
                    }
                )
                own.data_dir.mkdir()
                asyncio.run(create_topics(own))
                asyncio.run(prepare_database(own, replay_ledger=False))
                own_seal = asyncio.run(database_seal(own))
                asyncio.run(produce(bootstrap, own.events_topic, load.messages, own_seal))
                config.update(
                    prefix=own.topic_prefix,
                    topic=own.events_topic,
                    partitions=own.topic_partitions,
                )
                env_own = {
                    **env,
                    "DRGWATCH_TOPIC_PREFIX": own.topic_prefix,
                    "DRGWATCH_DATA_DIR": str(own.data_dir),
                    "DRGWATCH_TOPIC_PARTITIONS": str(own.topic_partitions),
                }
                if not one:
                    env_own["DRGWATCH_RULES_DIR"] = str(no_rules)
                log = work / f"{name}.log"
                outcome = run_contender("drgwatch", config, env_own, plan.timeout, log)
                outcome.name = name
                alerts_topics[name] = own.alerts_topic
            else:
                outcome = run_contender(name, config, env, plan.timeout, work / f"{name}.log")
            outcomes[name] = outcome
            echo(
                f"  {outcome.per_second:,.0f} messages/s"
                if outcome.error is None
                else f"  failed: {outcome.error}"
            )
        findings = bench_workload.expected_findings(load)
        for name, topic in alerts_topics.items():
            if name in outcomes and outcomes[name].error is None:
                alerts = asyncio.run(read_topic(bootstrap, topic))
                # quix_core runs the core with the shipped rules, as the worker does
                shipped = findings if name != "drgwatch_no_rules" else None
                wrong = check_drgwatch(outcomes[name], expected, alerts, shipped)
                exact[name] = not wrong
                problems += wrong if name == "drgwatch" else [f"{name}: {p}" for p in wrong]
    finally:
        stop_child(broker)
    result = summarise(plan, load, outcomes, problems, exact)
    if out is not None:
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return result


def partition_sizing(plan: Plan, outcomes: dict[str, Outcome]) -> dict[str, Any] | None:
    """What one partition of the events topic carries at most: the rate one worker sustains.

    A partition is consumed by one worker at a time and a worker runs on one core, so a
    partition's ceiling is one worker's rate on it alone: measured by the one-partition run
    where it ran, else the worker's rate over all the run's partitions (its whole core
    shared among them; a hot partition can take all of it). A worker holding P evenly
    loaded partitions gives each its rate / P (`even_share_events_per_s`).
    """
    worker = outcomes.get("drgwatch")
    single = outcomes.get("drgwatch_one_partition")
    measure = single if single is not None and single.error is None else worker
    if measure is None or measure.error is not None:
        return None
    sizing: dict[str, Any] = {
        "events_per_s_per_partition": round(measure.per_second),
        "measured_by": measure.name,
        "measured_partitions": 1 if measure is single else plan.partitions,
        # the same messages per second of the worker's own CPU time: what a worker
        # with a core to itself approaches, whatever else the machine ran meanwhile
        "events_per_cpu_s": (
            round(measure.processed / measure.cpu_seconds) if measure.cpu_seconds > 0 else None
        ),
    }
    if worker is not None and worker.error is None:
        sizing["worker_events_per_s"] = round(worker.per_second)
        sizing["worker_partitions"] = plan.partitions
        sizing["even_share_events_per_s"] = round(worker.per_second / plan.partitions)
    return sizing


def summarise(
    plan: Plan,
    load: bench_workload.Workload,
    outcomes: dict[str, Outcome],
    problems: list[str],
    exact: dict[str, bool],
) -> dict[str, Any]:
    drgwatch = outcomes.get("drgwatch")
    rates = {name: round(o.per_second) for name, o in outcomes.items() if o.error is None}
    ratios = {}
    rules_cost = rules_cpu_share = None
    if "drgwatch" in rates:
        for peer in ("quix", "quix_core", "naive_faust", "ceiling"):
            if rates.get(peer):
                ratios[f"drgwatch_vs_{peer}"] = round(rates["drgwatch"] / rates[peer], 3)
        if rates.get("drgwatch_x2"):
            ratios["two_workers_vs_one"] = round(rates["drgwatch_x2"] / rates["drgwatch"], 3)
        if rates.get("drgwatch_no_rules"):
            with_rules = rates["drgwatch"] / rates["drgwatch_no_rules"]
            ratios["with_rules_vs_without"] = round(with_rules, 3)
            # the share of the worker's throughput the shipped rules take
            rules_cost = round(1 - with_rules, 3)
            # and of its CPU per message: on a shared machine the one that other
            # processes' load leaves alone (same messages: the CPU seconds' ratio)
            cpu_on = outcomes["drgwatch"].cpu_seconds
            cpu_off = outcomes["drgwatch_no_rules"].cpu_seconds
            if cpu_on > 0 and cpu_off > 0:
                ratios["cpu_with_rules_vs_without"] = round(cpu_off / cpu_on, 3)
                rules_cpu_share = round(1 - cpu_off / cpu_on, 3)
    # drgwatch against Quix splits in two: the shell (drgwatch against its own core in
    # Quix) and the core (that against Quix's sum and check); throughput, and CPU per
    # message, which other processes' load leaves alone (the same messages: the CPU
    # seconds' ratio)
    if rates.get("quix_core") and rates.get("quix"):
        ratios["quix_core_vs_quix"] = round(rates["quix_core"] / rates["quix"], 3)
    for mine, peer in (("drgwatch", "quix"), ("drgwatch", "quix_core"), ("quix_core", "quix")):
        if mine in rates and peer in rates:
            cpu_mine, cpu_peer = outcomes[mine].cpu_seconds, outcomes[peer].cpu_seconds
            if cpu_mine > 0 and cpu_peer > 0:
                ratios[f"cpu_{mine}_vs_{peer}"] = round(cpu_peer / cpu_mine, 3)
    sizing = partition_sizing(plan, outcomes)
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
        "rules_cost": rules_cost,
        "rules_cpu_share": rules_cpu_share,
        "cpu_seconds": {n: round(o.cpu_seconds, 3) for n, o in outcomes.items() if o.error is None},
        "rule_alerts": drgwatch.report.get("rule_alerts", {}) if drgwatch else {},
        "events_per_s_per_partition": sizing["events_per_s_per_partition"] if sizing else None,
        "partition_sizing": sizing,
        "correct": drgwatch is not None
        and drgwatch.error is None
        and exact.get("drgwatch", False)
        and exact.get("drgwatch_no_rules", True)
        and exact.get("drgwatch_one_partition", True),
        "exact": exact,
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
    if result.get("rules_cost") is not None:
        rows.append(
            f"rules cost {result['rules_cost']:.1%} of the worker's throughput "
            f"({result['lines_per_s']['drgwatch']:,}/s with the shipped rules, "
            f"{result['lines_per_s']['drgwatch_no_rules']:,}/s without; "
            f"{sum(result['rule_alerts'].values()):,} rule alerts)"
        )
    if result.get("rules_cpu_share") is not None:
        cpu = result["cpu_seconds"]
        rows.append(
            f"rules take {result['rules_cpu_share']:.1%} of the worker's CPU per message "
            f"({cpu['drgwatch']:.2f} CPU s with the shipped rules, "
            f"{cpu['drgwatch_no_rules']:.2f} without)"
        )
    sizing = result.get("partition_sizing")
    if sizing:
        where = (
            "one partition, one worker"
            if sizing["measured_by"] == "drgwatch_one_partition"
            else f"one worker over {sizing['measured_partitions']} partitions"
        )
        per_cpu = sizing["events_per_cpu_s"]
        rows.append(
            f"events_per_s_per_partition {sizing['events_per_s_per_partition']:,} ({where}"
            + (f"; {per_cpu:,} per CPU second" if per_cpu else "")
            + ")"
        )
        if "even_share_events_per_s" in sizing:
            rows.append(
                f"  a worker holding {sizing['worker_partitions']} evenly loaded partitions: "
                f"{sizing['even_share_events_per_s']:,}/s each "
                f"({sizing['worker_events_per_s']:,}/s in all)"
            )
    if "drgwatch" in result["lines_per_s"] or "drgwatch" in result["errors"]:
        rows.append(f"drgwatch exactly correct: {result['correct']}")
    if "quix_core" in result["exact"]:
        rows.append(f"drgwatch's core in Quix exactly correct: {result['exact']['quix_core']}")
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
            f"pre-check (sample chargemaster, cheaper equivalents) at "
            f"{full['precheck']['requests_per_s']}/s: {full['precheck']['latency_ms']} ms"
            f" from when each was due (bar: p99 < 20 ms; errors {full['precheck']['errors']});"
            f" from when sent {full['precheck']['sent_to_answer_ms']} ms",
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
