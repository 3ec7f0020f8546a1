"""Token buckets per key (a client address, an identity), held in one API process; and
the count of failed sign-ins per name and address (`SignInThrottle`).

A bucket holds up to `burst` tokens and gains `per_minute` of them a minute; each
counted event takes one. An empty bucket says how long until the next token. Buckets
are kept for at most `tracked` keys: past that, full buckets go first (they hold
nothing a fresh one would not), then the least recently used.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

TRACKED_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Rate of some event per key; `now` is a monotonic clock reading in seconds."""

    def __init__(self, *, burst: int, per_minute: float, tracked: int = TRACKED_KEYS) -> None:
        self._burst = float(burst)
        self._per_second = per_minute / 60.0
        self._tracked = tracked
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _current(self, key: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._per_second)
            bucket.updated = now
        return bucket

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may count another event (0: it may now)."""
        bucket = self._current(key, now)
        if bucket is None or bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) / self._per_second

    def take(self, key: str, now: float) -> None:
        """Count one event of `key` (its bucket may go empty, never below)."""
        bucket = self._current(key, now)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated=now)
            self._buckets[key] = bucket
            self._forget_some(now)
        self._buckets.move_to_end(key)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)

    def _forget_some(self, now: float) -> None:
        if len(self._buckets) <= self._tracked:
            return
        for key in [k for k, b in self._buckets.items() if self._refilled(b, now)]:
            del self._buckets[key]
        while len(self._buckets) > self._tracked:
            self._buckets.popitem(last=False)

    def _refilled(self, bucket: _Bucket, now: float) -> bool:
        return bucket.tokens + (now - bucket.updated) * self._per_second >= self._burst


@dataclass
class _Failures:
    count: int
    last: float
    blocked_until: float


class SignInThrottle:
    """Failed sign-ins per key (a name, a client address), held in one API process.

    The first `free` failures of a key cost nothing; each further one blocks the key for
    1 s, 2 s, 4 s, ... up to `MAX_BLOCK_SECONDS`, during which every sign-in of it is
    answered 429 without checking a password. A success resets the key; a key with no
    failure for `FORGET_SECONDS` starts afresh. `now` is a clock reading in seconds.
    """

    MAX_BLOCK_SECONDS = 15 * 60.0
    FORGET_SECONDS = 60 * 60.0

    def __init__(self, *, tracked: int = TRACKED_KEYS) -> None:
        self._tracked = tracked
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: it may now)."""
        failures = self._failures.get(key)
        return 0.0 if failures is None else max(0.0, failures.blocked_until - now)

    def failed(self, key: str, now: float, *, free: int) -> None:
        """Count one failure of `key`, blocking it once it has had `free` of them."""
        failures = self._failures.get(key)
        if failures is None or now - failures.last >= self.FORGET_SECONDS:
            failures = _Failures(count=0, last=now, blocked_until=now)
            self._failures[key] = failures
            self._forget_some(now)
        self._failures.move_to_end(key)
        failures.count += 1
        failures.last = now
        if failures.count >= free:
            block = min(self.MAX_BLOCK_SECONDS, 2.0 ** min(failures.count - free, 30))
            failures.blocked_until = now + block

    def succeeded(self, key: str) -> None:
        """Forget the failures of `key`."""
        self._failures.pop(key, None)

    def _forget_some(self, now: float) -> None:
        if len(self._failures) <= self._tracked:
            return
        for key in [
            k
            for k, f in self._failures.items()
            if now - f.last >= self.FORGET_SECONDS and f.blocked_until <= now
        ]:
            del self._failures[key]
        while len(self._failures) > self._tracked:
            self._failures.popitem(last=False)
