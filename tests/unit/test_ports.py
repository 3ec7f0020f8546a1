"""Ports that nothing can take between choosing them and serving on them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.ports import (
    PortInUse,
    ephemeral_range,
    listening_socket,
    on_a_free_port,
    owns_listener,
    spare_port,
    spare_port_ranges,
)


def test_spare_ports_come_from_outside_the_ephemeral_range() -> None:
    assert spare_port_ranges((32768, 60999)) == [range(20000, 32768), range(61000, 65536)]
    assert spare_port_ranges((10000, 65535)) == [range(1024, 65536)]  # nothing left: retry only
    low, high = ephemeral_range()
    for _ in range(50):
        port = spare_port()
        assert not low <= port <= high
        with listening_socket(port):  # and free
            pass


def test_a_taken_port_is_refused_by_name() -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} is already in use"):
            listening_socket(port)


def test_the_owner_of_a_listener_is_told_from_a_process_that_only_sees_it_answer() -> None:
    with listening_socket() as mine:
        port = mine.getsockname()[1]
        assert owns_listener(os.getpid(), port)
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert not owns_listener(other.pid, port)
        finally:
            other.kill()
            other.wait()
    assert not owns_listener(os.getpid(), port)


def test_a_start_that_finds_its_port_taken_is_tried_again_on_another() -> None:
    tried: list[int] = []

    def start(port: int) -> str:
        tried.append(port)
        if len(tried) < 3:
            raise PortInUse(f"port {port} is already in use")
        return "started"

    port, started = on_a_free_port(start)
    assert started == "started" and port == tried[-1] and len(tried) == 3
