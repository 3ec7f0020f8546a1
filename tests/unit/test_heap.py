"""The worker's C heap: freed memory goes back to the system, threads share two arenas.

Each check runs in a process of its own, so that what the rest of the test session
allocated does not blur what the heap holds."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc arenas and malloc_trim are glibc's"
)

FREED_THEN_RELEASED = """
from services.alerting import heap

def rss_mb():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024

# states' sizes: past Python's small-object allocator, so each is a malloc block
blocks = [bytes(1000 + number % 50) for number in range(150_000)]
kept = blocks[::64]  # a few survivors pin the pages around them, as live cases do
del blocks
held = rss_mb()
released = heap.release_free_memory()
print(held, rss_mb(), released, len(kept))
"""

THREADS_ALLOCATING = """
import ctypes, threading
from services.alerting import heap

heap.limit_arenas(int(__import__("sys").argv[1]))
started = threading.Barrier(8)
done = threading.Event()

def allocate():
    blocks = [bytes(2000) for _ in range(1000)]
    started.wait()
    done.wait()
    del blocks

threads = [threading.Thread(target=allocate) for _ in range(7)]
for thread in threads:
    thread.start()
started.wait()
libc = ctypes.CDLL("libc.so.6")
libc.open_memstream.restype = ctypes.c_void_p
buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(buffer.value.decode().count("<heap nr="))
done.set()
for thread in threads:
    thread.join()
"""


def _run(code: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def test_freed_blocks_go_back_to_the_system() -> None:
    held, after, released, _ = _run(FREED_THEN_RELEASED).split()
    assert released == "True"
    # 150,000 blocks of ~1 KB, 1 in 64 kept: ~150 MB held once freed, ~3 MB in use
    assert int(held) - int(after) > 100, (held, after)


def test_threads_share_the_arenas_allowed() -> None:
    assert int(_run(THREADS_ALLOCATING, "2")) <= 2
    # without the limit each allocating thread would have had an arena of its own
    assert int(_run(THREADS_ALLOCATING, "64")) > 2
