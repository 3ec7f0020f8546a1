"""`drgwatch up` run as a user runs it, and what the user sees of it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_up(
    argv: Sequence[str], output: Path, settings: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a command (`make -s up ...`, `drgwatch up ...`) with its output in a file.

    The command gets a session of its own, so that `stop_up` can send it the SIGINT a
    terminal's Ctrl-C sends; DRGWATCH_* settings of the test run are left out, those in
    `settings` put in.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("DRGWATCH_")}
    env.update(settings or {})
    with open(output, "wb") as sink:
        return subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_banner(up: subprocess.Popen[bytes], output: Path, timeout: float = 180) -> str:
    """The output up to and including "drgwatch is up" and its URLs."""
    deadline = time.monotonic() + timeout
    while "Press Ctrl-C to stop." not in output.read_text(errors="replace"):
        assert up.poll() is None, output.read_text(errors="replace")
        assert time.monotonic() < deadline, output.read_text(errors="replace")
        time.sleep(0.25)
    return output.read_text()


def banner_ports(banner: str) -> tuple[int, int]:
    """(HTTP port, broker port) as the banner prints them."""
    http = re.search(r"API and ingest\s+http://127\.0\.0\.1:(\d+)", banner)
    broker = re.search(r"Kafka \(tansu\)\s+127\.0\.0\.1:(\d+)", banner)
    assert http and broker, banner
    return int(http.group(1)), int(broker.group(1))


def stop_up(up: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """Ctrl-C, as in the terminal; the exit code."""
    os.killpg(up.pid, signal.SIGINT)
    return up.wait(timeout)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Processes (other than this one) whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command:
            found.append(f"{entry.name}: {command}")
    return found
