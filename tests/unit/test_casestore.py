"""The worker's table directory: one per running worker, taken again after a kill."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from services.alerting.casestore import claim_directory

CLAIM = (
    "import os, signal, sys; from pathlib import Path;"
    "from services.alerting.casestore import claim_directory;"
    "print(claim_directory(Path(sys.argv[1])).name, flush=True);"
    "signal.pause() if sys.argv[2] == 'stay' else os.kill(os.getpid(), signal.SIGKILL)"
)


def _claim_in_a_process(root: Path, stay: bool) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(root), "stay" if stay else "die"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def test_a_killed_workers_directory_is_taken_by_the_next_one(tmp_path: Path) -> None:
    killed, name = _claim_in_a_process(tmp_path, stay=False)
    assert killed.wait(timeout=30) == -signal.SIGKILL and name == "worker-0"
    assert claim_directory(tmp_path) == tmp_path / "worker-0"


def test_two_running_workers_never_share_a_directory(tmp_path: Path) -> None:
    running, name = _claim_in_a_process(tmp_path, stay=True)
    try:
        assert name == "worker-0"
        assert claim_directory(tmp_path) == tmp_path / "worker-1"
        assert claim_directory(tmp_path) == tmp_path / "worker-2"  # held by this one already
    finally:
        running.kill()
        running.wait(timeout=30)
