"""Where the time goes between a posting and its alert on the live stream, hop by hop.

    .venv/bin/python scripts/alert_hops.py [--probes 30] [--gap 0.25] [--load 1000]
        [--load-seconds 20] [--idle 0] [--open-cases 0] [--lookup-seconds 15]

Starts the embedded stack as the full-path benchmark does (tansu, `drgwatch worker`,
`drgwatch api` on a SQLite file, or `DRGWATCH_DATABASE_URL`), opens a live stream, and
posts `--probes` postings `--gap` seconds apart, each a new case's admission and a
charge that takes it to red. For each probe it puts a time on every hop, all from the
one machine clock:

- sent, 202: the client;
- on the events topic: the record's timestamp (set by the API's producer as it sends);
- state in the changelog: the timestamp of the first changelog record holding the alert
  (set by the worker's producer once the batch is applied);
- alert on the alerts topic: that record's timestamp (sent once the changelog holds it);
- projected: the case row's `updated_at` (set by the projector as it writes the batch);
- on the stream: when the client read it.

With `--load RATE` the benchmark's paced load generator offers RATE lines a second of the
benchmark workload for `--load-seconds` alongside the probes (its own sent -> alert
figures are printed too). `--idle SECONDS` reads each process's CPU time over that many
quiet seconds at the end. `--open-cases N` opens N more cases and times case lookups at
200 a second for `--lookup-seconds` with the load generator's `lookup` mode (what the
benchmark does), `--lookup-runs` times in a row.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.bench.measure import (  # noqa: E402
    LOOKUP_HOSPITAL,
    Database,
    EmbeddedStack,
    admission,
    charge,
    cpu_seconds,
    embedded_stack,
    loadgen,
    open_lookup_cases,
    paced_load,
)
from services.casecost.state import state_data  # noqa: E402
from services.storage.engine import make_engine  # noqa: E402
from services.storage.models import CaseRecord  # noqa: E402

HOSPITAL = "HPROBE"
HOPS = [
    ("sent -> 202", "sent", "answered"),
    ("sent -> events topic", "sent", "on_events"),
    ("events topic -> changelog", "on_events", "in_changelog"),
    ("changelog -> alerts topic", "in_changelog", "on_alerts"),
    ("changelog -> projected", "in_changelog", "projected"),
    ("projected -> committed", "projected", "committed"),
    ("committed -> stream", "committed", "on_stream"),
    ("projected -> stream", "projected", "on_stream"),
    ("202 -> stream", "answered", "on_stream"),
    ("sent -> stream", "sent", "on_stream"),
]


def probe_posting(number: int) -> tuple[str, list[dict[str, Any]]]:
    case_id = f"P{number:05d}-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC).isoformat()
    charge_id = f"{case_id}-c"
    return charge_id, [
        admission(HOSPITAL, case_id, at=now),
        charge(
            HOSPITAL,
            case_id,
            charge_id,
            at=now,
            item_code="P-PCI",
            item_name="PCI",
            category="procedure",
            unit_price="45000.00",
        ),
    ]


class CommitWatch:
    """SQLite only: a thread reading the alerts table every 5 ms, noting when each
    event's alert is first visible (committed)."""

    def __init__(self, database_url: str) -> None:
        import sqlite3

        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        path = database_url.split("///", 1)[1]
        self._connection = sqlite3.connect(path, check_same_thread=False)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = 0
        while not self.stop.is_set():
            rows = self._connection.execute(
                "SELECT seq, event_id FROM alerts WHERE seq > ? ORDER BY seq", (last,)
            ).fetchall()
            now = time.time()
            for seq, event_id in rows:
                last = seq
                self.seen.setdefault(event_id, now)
            time.sleep(0.005)


class Stream:
    """A live-stream client in a thread of its own: when each event_id's alert arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.arrived: dict[str, float] = {}
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=None)) as http,
            http.stream("GET", f"{self.url}/v1/alerts/stream") as response,
        ):
            self.ready.set()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    alert = orjson.loads(line[6:])
                    self.arrived.setdefault(alert["event_id"], time.time())


async def topic_times(bootstrap: str, topic: str, match: Any, partitions: int) -> dict[str, float]:
    """event_id -> the timestamp (s) of the first record of `topic` that `match` names it in."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, float] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    for event_id in match(record):
                        found.setdefault(event_id, record.timestamp / 1000)
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
            if not batches:
                remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return found


def event_ids_of_event(record: Any) -> list[str]:
    try:
        return [orjson.loads(record.value)["event_id"]]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return []


def event_ids_of_state(record: Any) -> list[str]:
    if not record.value or not record.key or not record.key.startswith(HOSPITAL.encode()):
        return []
    state = state_data(record.value)
    return [
        alert["event_id"]
        for alert in state.get("alerts", [])
        if alert.get("kind", "level") == "level"
    ]


def event_ids_of_alert(record: Any) -> list[str]:
    alert = orjson.loads(record.value)
    return [alert["event_id"]] if alert.get("kind", "level") == "level" else []


async def projected_times(url: str) -> dict[str, float]:
    """case_id -> the case row's updated_at (s)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(CaseRecord.case_id, CaseRecord.updated_at).where(
                    CaseRecord.hospital_id == HOSPITAL
                )
            )
            return {row.case_id: row.updated_at.timestamp() for row in rows}
    finally:
        await engine.dispose()


def report(probes: list[dict[str, float]]) -> None:
    print(f"{'hop':28} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for name, start, end in HOPS:
        spans = [(p[end] - p[start]) * 1000 for p in probes if start in p and end in p]
        if not spans:
            print(f"{name:28} {0:>4}")
            continue
        spans.sort()
        p90 = spans[min(len(spans) - 1, int(0.9 * len(spans)))]
        print(
            f"{name:28} {len(spans):>4} {statistics.median(spans):>8.1f} {p90:>8.1f}"
            f" {spans[-1]:>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--gap", type=float, default=0.25)
    parser.add_argument("--load", type=float, default=0.0, help="lines/s offered meanwhile")
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--idle", type=float, default=0.0)
    parser.add_argument("--open-cases", type=int, default=0)
    parser.add_argument("--lookup-seconds", type=float, default=15.0)
    parser.add_argument("--lookup-runs", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()

    with embedded_stack("hops", partitions=args.partitions) as stack:
        try:
            measured(args, stack)
        finally:
            print(f"logs: {stack.work}")


def measured(args: argparse.Namespace, stack: EmbeddedStack) -> None:
    url, work, settings, bootstrap = stack.url, stack.work, stack.settings, stack.bootstrap
    assert stack.api is not None and stack.worker is not None
    stream = Stream(url)
    watch = (
        CommitWatch(settings.resolved_database_url)
        if settings.resolved_database_url.startswith("sqlite")
        else None
    )
    stream.ready.wait(10)
    time.sleep(2)
    processes = {
        "api": stack.api.pid,
        "worker": stack.worker.pid,
        "broker": stack.broker.pid,
    }
    cpu_before = {name: cpu_seconds(p) for name, p in processes.items()}
    load_thread = None
    load_result: dict[str, Any] = {}
    if args.load:

        def run_load() -> None:
            load_result.update(paced_load(url, work, args.load, args.load_seconds)[0])

        load_thread = threading.Thread(target=run_load)
        load_thread.start()
        time.sleep(1.5)
    probes: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        for number in range(args.probes):
            charge_id, posting = probe_posting(number)
            sent = time.time()
            answer = http.post("/v1/events", json={"events": posting})
            answered = time.time()
            if answer.status_code == 202:
                probes[charge_id] = {
                    "case_id": posting[0]["case_id"],
                    "sent": sent,
                    "answered": answered,
                }
            time.sleep(args.gap * (0.5 + (number * 0.618) % 1))  # spread over poll phases
    deadline = time.time() + 15
    while time.time() < deadline and not all(e in stream.arrived for e in probes):
        time.sleep(0.1)
    if load_thread is not None:
        load_thread.join()
    if watch is not None:
        watch.stop.set()
    cpu_after = {name: cpu_seconds(p) for name, p in processes.items()}
    on_events = asyncio.run(
        topic_times(bootstrap, settings.events_topic, event_ids_of_event, args.partitions)
    )
    in_changelog = asyncio.run(
        topic_times(bootstrap, settings.case_changelog_topic, event_ids_of_state, args.partitions)
    )
    on_alerts = asyncio.run(
        topic_times(bootstrap, settings.alerts_topic, event_ids_of_alert, args.partitions)
    )
    projected = asyncio.run(projected_times(settings.resolved_database_url))
    timed = []
    for charge_id, probe in probes.items():
        times = {k: v for k, v in probe.items() if k != "case_id"}
        for name, source in (
            ("on_events", on_events),
            ("in_changelog", in_changelog),
            ("on_alerts", on_alerts),
            ("on_stream", stream.arrived),
            ("committed", watch.seen if watch is not None else {}),
        ):
            if charge_id in source:
                times[name] = source[charge_id]
        if probe["case_id"] in projected:
            times["projected"] = projected[probe["case_id"]]
        timed.append(times)
    print(f"probes: {len(probes)} accepted, {sum('on_stream' in t for t in timed)} on the stream")
    report(timed)
    spent = {name: round(cpu_after[name] - cpu_before[name], 2) for name in processes}
    print(f"CPU s during the probes: {spent}")
    if load_result:
        print(
            f"paced load: {load_result['offered_lines_per_s']} lines/s offered,"
            f" {load_result['alerts']} alerts; sent -> alert {load_result['sent_to_alert_ms']};"
            f" 202 -> alert {load_result['latency_ms']}; answers {load_result['answer_ms']}"
        )
    if args.idle:
        time.sleep(5)
        before = {name: cpu_seconds(p) for name, p in processes.items()}
        time.sleep(args.idle)
        after = {name: cpu_seconds(p) for name, p in processes.items()}
        idle = {name: round(after[name] - before[name], 2) for name in processes}
        print(f"CPU s over {args.idle:.0f} idle s (one stream open): {idle}")
    if args.open_cases:
        lookups(args, url, work, processes["api"], settings.resolved_database_url)


def lookups(args: argparse.Namespace, url: str, work: Path, api: int, database_url: str) -> None:
    open_lookup_cases(url, work, Database(database_url), args.open_cases)
    time.sleep(2)
    cases = [f"L{n:07d}" for n in range(args.open_cases)]
    for run in range(args.lookup_runs):
        before = cpu_seconds(api)
        result = loadgen(
            "lookup",
            {
                "url": url,
                "hospital_id": LOOKUP_HOSPITAL,
                "cases": cases,
                "rate": 200.0,
                "seconds": args.lookup_seconds,
            },
            work,
            timeout=args.lookup_seconds + 120,
        )
        print(
            f"lookup run {run + 1}: {result['requests_per_s']}/s, errors {result['errors']},"
            f" {result['latency_ms']}, API CPU {cpu_seconds(api) - before:.2f} s"
        )


if __name__ == "__main__":
    main()
