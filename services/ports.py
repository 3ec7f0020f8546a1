"""Ports for the servers drgwatch starts, chosen so that nothing can take them in between.

A port found by binding port 0 and closing the probe comes from the kernel's ephemeral
range, the range outgoing connections take their local ports from: by the time a server
binds it, a client connection may hold it ("address already in use"). Every server that
`drgwatch up`, the benchmark and the tests start gets its port one of two ways instead:

- an HTTP server is handed a socket its parent bound and keeps open
  (`listening_socket`), so the port is never free between choosing and serving, and
  stays the same when the server is started again;
- the broker, which binds its own listener, gets a port outside the ephemeral range
  (`spare_port`), which outgoing connections never take; should another server have
  taken it in the meantime, the broker's start fails with `PortInUse` and
  `on_a_free_port` starts it again on another.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from services.errors import Conflict

LOOPBACK = "127.0.0.1"
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_DEFAULT_EPHEMERAL = (32768, 60999)
# below this, ports are often taken by services people run (PostgreSQL, Kafka, web servers)
LOWEST_CHOICE = 20000
LISTEN = "0A"  # the TCP state in /proc/net/tcp

Started = TypeVar("Started")


class PortInUse(Conflict):
    """The port is taken by another socket."""


def ephemeral_range(source: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (inclusive)."""
    try:
        low, high = (int(part) for part in source.read_text().split())
    except (OSError, ValueError):
        return LINUX_DEFAULT_EPHEMERAL
    return low, high


def spare_port_ranges(ephemeral: tuple[int, int]) -> list[range]:
    """Port ranges outside the ephemeral range to choose from (the whole unprivileged
    range when the ephemeral range leaves nothing: then only the retry protects)."""
    low, high = ephemeral
    ranges = [range(LOWEST_CHOICE, low), range(max(high + 1, LOWEST_CHOICE), 65536)]
    chosen = [span for span in ranges if len(span) > 0]
    return chosen or [range(1024, 65536)]


def spare_port(rng: random.Random | None = None) -> int:
    """A port outside the ephemeral range that no socket is bound to right now."""
    rng = rng or random.Random()
    ranges = spare_port_ranges(ephemeral_range())
    weights = [len(span) for span in ranges]
    for _ in range(200):
        port = rng.choice(rng.choices(ranges, weights)[0])
        if _bindable(port):
            return port
    raise PortInUse("no free port outside the ephemeral range after 200 tries")


def listening_socket(port: int = 0, *, host: str = LOOPBACK, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to `port` (0: one the kernel picks) and listening.

    Hand it to a server process (`pass_fds`) and keep it open: the port cannot be taken
    while the server starts or restarts, and connections arriving meanwhile wait in the
    backlog instead of being refused.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} is already in use") from None
        raise
    return sock


def on_a_free_port(start: Callable[[int], Started], attempts: int = 5) -> tuple[int, Started]:
    """Start a server on a spare port; on `PortInUse` try another one."""
    for _ in range(attempts - 1):
        port = spare_port()
        with contextlib.suppress(PortInUse):
            return port, start(port)
    port = spare_port()
    return port, start(port)


def owns_listener(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on TCP `port`.

    A server that failed to bind may still see the port answer: another process's
    listener. Linux names each socket by inode in /proc; elsewhere the answer is whether
    anything listens there.
    """
    inodes = _listening_inodes(port)
    if inodes is None:
        return _answers(port)
    if not inodes:
        return False
    wanted = {f"socket:[{inode}]" for inode in inodes}
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{descriptor}") in wanted:
                return True
    return False


def _listening_inodes(port: int) -> set[str] | None:
    """Inodes of the sockets listening on `port` (None: no /proc to read)."""
    found: set[str] = set()
    read_any = False
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        read_any = True
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].split(":")[1], 16) == port:
                found.add(fields[9])
    return found if read_any else None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOOPBACK, port)) == 0
