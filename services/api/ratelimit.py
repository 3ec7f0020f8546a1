"""Token buckets per key (a client address, an identity), held in one API process.

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
