"""Post a workload through the public API as hospital systems would, through faults.

One thread per poster; each posts its batches in order and retries a batch until it
gets an answer: on a refused connection, a timeout or a 5xx it waits and posts the
same batch again (a retry is safe: event ids make ingest idempotent), honouring
Retry-After on a 503. Every answer is checked item by item against what the workload
says the event is (valid, an exact duplicate, or one ingest must refuse).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson

from tests.faults.workload import Posting, Workload

BATCH_DEADLINE = 180.0  # a batch that gets no answer for this long fails the run


@dataclass
class DriverStats:
    requests: int = 0
    retries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    item_statuses: Counter[str] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    longest_unanswered: float = 0.0  # seconds from a batch's first failure to its answer
    slowest_answer: float = 0.0  # seconds from a batch's first attempt to its answer
    anomalies: list[str] = field(default_factory=list)
    # when each failure and each success happened (monotonic), for outage windows
    failures: list[float] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)

    def outage_after(self, moment: float) -> tuple[float | None, float | None]:
        """(first failure, first success after it) at or after `moment`."""
        first_failure = next((t for t in self.failures if t >= moment), None)
        if first_failure is None:
            return None, None
        recovered = next((t for t in self.successes if t > first_failure), None)
        return first_failure, recovered


class Driver:
    """Posts every batch of a workload at a bounded rate, from one thread per poster."""

    def __init__(self, url: str, workload: Workload, *, events_per_second: float) -> None:
        self.url = url
        self.workload = workload
        self.rate_per_poster = events_per_second / len(workload.batches)
        self.stats = DriverStats()
        self.total = len(workload.postings)
        self._posted = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(batches,), daemon=True, name=f"poster-{n}")
            for n, batches in enumerate(workload.batches)
        ]
        self.started_at = 0.0
        self.finished_at = 0.0

    @property
    def progress(self) -> float:
        """The share of postings answered so far."""
        with self._lock:
            return self._posted / self.total

    def start(self) -> None:
        self.started_at = time.monotonic()
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            raise AssertionError(f"posting did not finish in {timeout:.0f}s")
        self.finished_at = time.monotonic()

    def wait_for_progress(self, share: float, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.progress < share:
            if time.monotonic() > deadline:
                raise AssertionError(f"posting stuck at {self.progress:.0%}")
            if not any(thread.is_alive() for thread in self._threads):
                return
            time.sleep(0.02)

    def _run(self, batches: list[list[Posting]]) -> None:
        sent = 0
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for batch in batches:
                self._post(client, batch)
                sent += len(batch)
                with self._lock:
                    self._posted += len(batch)
                ahead = sent / self.rate_per_poster - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)

    def _post(self, client: httpx.Client, batch: list[Posting]) -> None:
        body = {"events": [posting.event for posting in batch]}
        first_attempt = time.monotonic()
        first_failure: float | None = None
        while True:
            self._count("requests")
            wait = 0.2
            try:
                response = client.post("/v1/events", json=body)
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            else:
                outcome = str(response.status_code)
                if response.status_code in (202, 422):
                    self._check(batch, response)
                    self._answered(first_attempt, first_failure)
                    return
                if response.status_code == 503:
                    retry_after = response.headers.get("retry-after", "")
                    if not retry_after.isdigit():
                        with self._lock:
                            self.stats.unavailable_without_retry_after += 1
                    wait = float(retry_after) if retry_after.isdigit() else 1.0
            now = time.monotonic()
            with self._lock:
                self.stats.statuses[outcome] += 1
                self.stats.retries += 1
                self.stats.failures.append(now)
            first_failure = first_failure or now
            if now - first_failure > BATCH_DEADLINE:
                raise AssertionError(f"no answer for a batch in {BATCH_DEADLINE:.0f}s: {outcome}")
            time.sleep(wait)

    def _answered(self, first_attempt: float, first_failure: float | None) -> None:
        now = time.monotonic()
        with self._lock:
            self.stats.successes.append(now)
            self.stats.slowest_answer = max(self.stats.slowest_answer, now - first_attempt)
            if first_failure is not None:
                self.stats.longest_unanswered = max(
                    self.stats.longest_unanswered, now - first_failure
                )

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _check(self, batch: list[Posting], response: httpx.Response) -> None:
        body = response.json()
        with self._lock:
            self.stats.statuses[str(response.status_code)] += 1
        if response.status_code == 422:
            # only a batch with nothing acceptable in it may be refused as a whole
            if any(posting.valid for posting in batch):
                self._anomaly(f"422 for a batch with valid events: {response.text[:300]}")
            return
        results = body["results"]
        if len(results) != len(batch):
            self._anomaly(f"{len(results)} results for {len(batch)} events")
            return
        for posting, result in zip(batch, results, strict=True):
            status = result["status"]
            with self._lock:
                self.stats.item_statuses[status] += 1
            if not posting.valid:
                expected = {"rejected"}
            elif posting.duplicate:
                expected = {"duplicate"}
            else:
                # "duplicate" when an earlier attempt of this batch was made durable
                # but its answer was lost (the API died, the connection dropped)
                expected = {"accepted", "duplicate"}
            if status not in expected:
                self._anomaly(f"{posting.event['event_id']}: {status}, expected {expected}")

    def _anomaly(self, text: str) -> None:
        with self._lock:
            self.stats.anomalies.append(text)


class AlertStreamReader:
    """A live-alert client: reads the SSE stream, reconnects with Last-Event-ID."""

    def __init__(self, url: str, hospital_id: str) -> None:
        self.url = url
        self.hospital_id = hospital_id
        self.received: list[str] = []  # alert ids, in arrival order
        self.reconnects = 0
        self._last_event_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="alert-stream")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)

    def _run(self) -> None:
        while not self._stop.is_set():
            headers = {"Last-Event-ID": self._last_event_id} if self._last_event_id else {}
            try:
                with httpx.stream(
                    "GET",
                    f"{self.url}/v1/alerts/stream",
                    params={"hospital_id": self.hospital_id},
                    headers=headers,
                    timeout=httpx.Timeout(5.0, read=30.0),
                ) as response:
                    event_id = None
                    for line in response.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.startswith("id: "):
                            event_id = line[4:]
                        elif line.startswith("data: ") and event_id is not None:
                            self.received.append(orjson.loads(line[6:])["alert_id"])
                            self._last_event_id = event_id
            except httpx.HTTPError:
                pass
            if not self._stop.is_set():
                self.reconnects += 1
                time.sleep(0.5)
