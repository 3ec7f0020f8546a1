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
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.bench import workload as bench_workload  # noqa: E402
from services.bench.measure import (  # noqa: E402
    REQUEST_EVENTS,
    cpu_times,
    embedded_stack,
    paced_load,
    post_events,
)


class CpuClock:
    """The CPU time a process spends from now on: all of it, and its main thread's."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = cpu_times(pid)
        self.main_start = cpu_times(pid, pid)

    def report(self, per: int, unit: str, scale: float) -> str:
        user, system = (b - a for a, b in zip(self.start, cpu_times(self.pid), strict=True))
        main = sum(cpu_times(self.pid, self.pid)) - sum(self.main_start)
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

    with embedded_stack("ingestload", worker=arguments.worker, ready=arguments.worker) as stack:
        assert stack.api is not None
        measured(arguments, stack.url, stack.work, stack.api.pid)


def measured(arguments: argparse.Namespace, url: str, work: Path, api: int) -> None:
    time.sleep(2)
    if arguments.phase in ("paced", "both"):
        spy = record_with(arguments.py_spy, api, work / "paced.spy")
        clock = CpuClock(api)
        report, postings = paced_load(
            url,
            work,
            arguments.rate,
            arguments.seconds,
            timeout=300,
            drain_seconds=3.0 if arguments.worker else 0.5,
        )
        used = clock.report(postings, "ms a posting", 1000)
        stopped(spy)
        print(
            f"paced: {postings} postings ({report['lines']} lines) offered at"
            f" {report['offered_lines_per_s']} lines/s; answers from send (ms)"
            f" {report['answer_ms']}; {used}"
        )
        if arguments.worker:
            print(f"  sent -> alert (ms) {report['sent_to_alert_ms']}")
    if arguments.phase in ("post", "both"):
        load = bench_workload.generate(arguments.lines, arguments.lines // 40, hospital="HP")
        flat = [event for posting in load.postings for event in posting]
        spy = record_with(arguments.py_spy, api, work / "post.spy")
        clock = CpuClock(api)
        posted = post_events(url, work, flat, "batches", REQUEST_EVENTS)
        used = clock.report(load.lines, "us a line", 1e6)
        stopped(spy)
        seconds = posted["last_answer_at"] - posted["first_post_at"]
        requests = -(-len(flat) // REQUEST_EVENTS)
        print(
            f"post: {load.lines} lines ({len(flat)} events) in {requests} postings:"
            f" {load.lines / seconds:.0f} lines/s, answers {posted['answers']}; {used}"
        )


if __name__ == "__main__":
    main()
