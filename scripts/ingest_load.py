"""The API's ingest under load, served as `drgwatch api` serves it: answer times and CPU.

    .venv/bin/python scripts/ingest_load.py [--phase paced|post|both] [--rate 1000]
        [--seconds 20] [--lines 40000] [--worker]

Starts the embedded broker (tansu), the topics, a new database (SQLite in a temporary
directory, or DRGWATCH_DATABASE_URL) and `drgwatch api` on loopback; with `--worker`
also the worker, whose projector writes the same database, as under `drgwatch up`.
Then the benchmark's own load generator (services/bench/loadgen.py) in a process of its
own:

- paced: the benchmark's latency workload (postings of 1 to 20 lines, median 4) offered
  at `--rate` lines a second for `--seconds`; each answer timed from the moment its
  posting was sent (and, with `--worker`, each alert on the live stream);
- post: `--lines` of the benchmark workload in postings of 200 events from 4 clients
  as fast as they are answered: lines a second through ingest.

For each phase it prints the API process's CPU time (user + system from /proc, all its
threads) per posting and per line, which the load of other processes does not inflate
the way it stretches the wall-clock figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.bench import workload as bench_workload  # noqa: E402
from services.bench.fullpath import REQUEST_EVENTS, loadgen  # noqa: E402
from services.ports import listening_socket, on_a_free_port  # noqa: E402
from services.settings import CommonSettings  # noqa: E402
from services.stack import prepare_database, start_broker, wait_ready  # noqa: E402
from services.supervisor import start_child, stop_child  # noqa: E402
from services.topics import create_topics  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: int | None = None) -> tuple[float, float]:
    """(user, system) CPU time of the process `pid` (every thread), or of one `thread`."""
    where = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(where).read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


class CpuClock:
    """The CPU time a process spends from now on: all of it, and its main thread's."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = cpu_seconds(pid)
        self.main_start = cpu_seconds(pid, pid)

    def report(self, per: int, unit: str, scale: float) -> str:
        user, system = (b - a for a, b in zip(self.start, cpu_seconds(self.pid), strict=True))
        main = sum(cpu_seconds(self.pid, self.pid)) - sum(self.main_start)
        total = user + system
        return (
            f"API CPU {total:.2f} s (user {user:.2f}, system {system:.2f}; event loop thread"
            f" {main:.2f}, other threads {total - main:.2f}): {scale * total / per:.2f} {unit}"
        )


def record_with(py_spy: str | None, pid: int, output: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording the process `pid` (collapsed stacks, every thread) until stopped."""
    if py_spy is None:
        return None
    print(f"py-spy: {output}")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "-f",
            "raw",
            "-r",
            "100",
            "--nonblocking",
            "-o",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stopped(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


def wait_serving(url: str, timeout: float) -> None:
    """Until the API answers with its database and broker ready (no worker is asked for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            checks = httpx.get(f"{url}/readyz", timeout=2).json()["checks"]
            if checks["database"] == "ok" and checks["broker"] == "ok":
                return
        time.sleep(0.5)
    raise RuntimeError(f"the API was not serving after {timeout:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=["paced", "post", "both"], default="both")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced: lines a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--lines", type=int, default=40_000, help="post: lines posted")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument(
        "--py-spy", metavar="BINARY", help="record the API with py-spy during each phase"
    )
    arguments = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="drgwatch-ingest-load-"))
    http = listening_socket()
    url = f"http://127.0.0.1:{http.getsockname()[1]}"
    broker_port, broker = on_a_free_port(lambda port: start_broker(port, work / "broker.log"))
    env = dict(os.environ)
    env.update(
        DRGWATCH_MODE="embedded",
        DRGWATCH_DATA_DIR=str(work),
        DRGWATCH_KAFKA_BOOTSTRAP=f"127.0.0.1:{broker_port}",
        DRGWATCH_TOPIC_PREFIX="ingestload",
    )
    settings = CommonSettings().model_copy(
        update={
            "data_dir": work,
            "kafka_bootstrap": f"127.0.0.1:{broker_port}",
            "topic_prefix": "ingestload",
        }
    )
    children = [broker]
    python = sys.executable
    try:
        asyncio.run(create_topics(settings))
        asyncio.run(prepare_database(settings, replay_ledger=False))
        if arguments.worker:
            children.append(
                start_child([python, "-m", "services.cli", "worker"], env, work / "worker.log")
            )
        api = start_child(
            [python, "-m", "services.cli", "api", "--fd", str(http.fileno())],
            env,
            work / "api.log",
            pass_fds=[http.fileno()],
        )
        children.append(api)
        if arguments.worker:
            wait_ready(url, 120, children)
        else:
            wait_serving(url, 120)
        time.sleep(2)
        if arguments.phase in ("paced", "both"):
            paced = bench_workload.generate(
                int(arguments.rate * arguments.seconds), 300, seed=12, hospital="HLAT"
            )
            (work / "paced.json").write_bytes(orjson.dumps(paced.postings))
            spy = record_with(arguments.py_spy, api.pid, work / "paced.spy")
            clock = CpuClock(api.pid)
            report: dict[str, Any] = loadgen(
                "paced",
                {
                    "url": url,
                    "postings_file": str(work / "paced.json"),
                    "seconds": arguments.seconds,
                    "hospital_id": "HLAT",
                    "drain_seconds": 3.0 if arguments.worker else 0.5,
                },
                work,
                timeout=arguments.seconds + 300,
            )
            used = clock.report(len(paced.postings), "ms a posting", 1000)
            stopped(spy)
            print(
                f"paced: {len(paced.postings)} postings ({report['lines']} lines) offered at"
                f" {report['offered_lines_per_s']} lines/s; answers from send (ms)"
                f" {report['answer_ms']}; {used}"
            )
            if arguments.worker:
                print(f"  sent -> alert (ms) {report['sent_to_alert_ms']}")
        if arguments.phase in ("post", "both"):
            load = bench_workload.generate(arguments.lines, arguments.lines // 40, hospital="HP")
            flat = [event for posting in load.postings for event in posting]
            bodies = [
                orjson.dumps({"events": flat[start : start + REQUEST_EVENTS]})
                for start in range(0, len(flat), REQUEST_EVENTS)
            ]
            (work / "batches.jsonl").write_bytes(b"\n".join(bodies))
            spy = record_with(arguments.py_spy, api.pid, work / "post.spy")
            clock = CpuClock(api.pid)
            posted = loadgen(
                "post",
                {"url": url, "batches_file": str(work / "batches.jsonl"), "concurrency": 4},
                work,
                timeout=900,
            )
            used = clock.report(load.lines, "us a line", 1e6)
            stopped(spy)
            seconds = posted["last_answer_at"] - posted["first_post_at"]
            print(
                f"post: {load.lines} lines ({len(flat)} events) in {len(bodies)} postings:"
                f" {load.lines / seconds:.0f} lines/s, answers {posted['answers']}; {used}"
            )
    finally:
        for child in reversed(children):
            stop_child(child)
        http.close()


if __name__ == "__main__":
    main()
