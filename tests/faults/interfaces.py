"""Hospital interface clients for the kill tests: an MLLP interface engine and a FHIR poster.

Both behave as the systems in front of drgwatch do. `MllpEngine` sends one HL7 v2 message
at a time on its connection (as Mirth or Rhapsody do), waits for the ACK with a timeout,
and on a dropped connection, a refused one or a timeout reconnects and resends the same
message (the same MSH-10); it moves on only after an AA. `FhirPoster` posts Bundles and
posts the same Bundle again on a connection error or a 5xx (honouring Retry-After).
Each sends its own cases' messages in order, at a bounded rate, from its own thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
ACK_TIMEOUT = 5.0  # an interface engine's ACK wait before it resends (Mirth: 5 s)
MESSAGE_DEADLINE = 60.0  # a message not acknowledged for this long fails the run


@dataclass(frozen=True)
class Outgoing:
    """One message or Bundle and the charges it carries: event id -> amount."""

    key: str  # MSH-10, or the Bundle's name in the test
    case_id: str
    body: bytes
    charges: dict[str, Decimal]
    event_ids: tuple[str, ...]  # every event it records (charges and case events)


@dataclass
class Delivery:
    """What a sender went through; all times are monotonic."""

    attempts: int = 0
    resends: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # answer code -> count
    acknowledged: list[str] = field(default_factory=list)  # keys, in order
    refused: list[str] = field(default_factory=list)  # "key: answer"
    anomalies: list[str] = field(default_factory=list)
    # keys of messages answered as recorded before: a resend after a lost answer
    already_received: list[str] = field(default_factory=list)
    longest_unanswered: float = 0.0  # from a message's first failure to its acceptance
    failures: list[float] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)
    error: str | None = None


class Sender:
    """Sends its messages in order from one thread; `deliver` is the protocol."""

    def __init__(self, messages: Sequence[Outgoing], *, per_second: float, name: str) -> None:
        self.messages = list(messages)
        self.per_second = per_second
        self.delivery = Delivery()
        self.lock = threading.Lock()
        self.current: Outgoing | None = None  # the message being delivered
        self.in_flight = False  # sent, not yet answered
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)

    @property
    def done(self) -> int:
        with self.lock:
            return len(self.delivery.acknowledged) + len(self.delivery.refused)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            for sent, message in enumerate(self.messages, start=1):
                self.current = message
                self.deliver(message)
                ahead = sent / self.per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.delivery.error = f"{type(error).__name__}: {error}"
        finally:
            self.close()

    def deliver(self, message: Outgoing) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Let go of any connection."""

    def failed(self, message: Outgoing, first_failure: float | None, why: str) -> float:
        now = time.monotonic()
        with self.lock:
            self.delivery.resends += 1
            self.delivery.failures.append(now)
            self.delivery.answers[why] = self.delivery.answers.get(why, 0) + 1
        first_failure = first_failure or now
        if now - first_failure > MESSAGE_DEADLINE:
            raise AssertionError(f"{message.key}: unanswered for {MESSAGE_DEADLINE:.0f} s ({why})")
        return first_failure

    def answered(self, message: Outgoing, code: str, first_failure: float | None) -> None:
        now = time.monotonic()
        with self.lock:
            delivery = self.delivery
            delivery.answers[code] = delivery.answers.get(code, 0) + 1
            delivery.successes.append(now)
            if first_failure is not None:
                delivery.longest_unanswered = max(delivery.longest_unanswered, now - first_failure)
            if code in ("AA", "200"):
                delivery.acknowledged.append(message.key)
            else:
                delivery.refused.append(f"{message.key}: {code}")

    def anomaly(self, text: str) -> None:
        with self.lock:
            self.delivery.anomalies.append(text)


class MllpEngine(Sender):
    """An interface engine's outbound MLLP channel (see the module docstring)."""

    def __init__(
        self, port: int, messages: Sequence[Outgoing], *, per_second: float, name: str
    ) -> None:
        super().__init__(messages, per_second=per_second, name=name)
        self.port = port
        self.connection: socket.socket | None = None
        self.connections = 0

    def deliver(self, message: Outgoing) -> None:
        first_failure: float | None = None
        while True:
            with self.lock:
                self.delivery.attempts += 1
            try:
                if self.connection is None:
                    self.connection = socket.create_connection(
                        ("127.0.0.1", self.port), timeout=ACK_TIMEOUT
                    )
                    self.connections += 1
                self.in_flight = True
                self.connection.sendall(START_BLOCK + message.body + END_BLOCK)
                ack = self._read_frame(self.connection)
            except TimeoutError:
                why = "timeout"
            except OSError as error:
                why = type(error).__name__
            else:
                self.in_flight = False
                code, control_id, text = _msa(ack)
                if control_id != message.key:
                    self.anomaly(f"{message.key}: an ACK for {control_id!r}")
                    why = "ACK for another message"
                else:
                    if "already received" in text:
                        with self.lock:
                            self.delivery.already_received.append(message.key)
                    self.answered(message, code, first_failure)
                    return
            # the answer, if any, is lost with this connection: start a new one
            self.in_flight = False
            self.close()
            first_failure = self.failed(message, first_failure, why)
            time.sleep(0.2)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    @staticmethod
    def _read_frame(connection: socket.socket) -> str:
        received = b""
        while END_BLOCK not in received:
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed before the ACK")
            received += chunk
        start = received.find(START_BLOCK)
        return received[start + 1 : received.find(END_BLOCK)].decode()


def _msa(ack: str) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, MSA-3 text) of an ACK."""
    for segment in ack.split("\r"):
        if segment.startswith("MSA|"):
            fields = segment.split("|") + ["", ""]
            return fields[1], fields[2], fields[3]
    return "no MSA", "", ""


class FhirPoster(Sender):
    """A hospital system posting FHIR Bundles to POST /v1/fhir (see the module docstring)."""

    def __init__(
        self, url: str, messages: Sequence[Outgoing], *, per_second: float, name: str
    ) -> None:
        super().__init__(messages, per_second=per_second, name=name)
        self.client = httpx.Client(base_url=url, timeout=30)

    def deliver(self, message: Outgoing) -> None:
        first_failure: float | None = None
        while True:
            with self.lock:
                self.delivery.attempts += 1
            wait = 0.2
            self.in_flight = True
            try:
                response = self.client.post(
                    "/v1/fhir",
                    content=message.body,
                    headers={"Content-Type": "application/fhir+json"},
                )
            except httpx.HTTPError as error:
                why = type(error).__name__
            else:
                self.in_flight = False
                if response.status_code < 500:
                    self.answered(message, self._verdict(message, response), first_failure)
                    return
                why = str(response.status_code)
                retry_after = response.headers.get("retry-after", "")
                wait = float(retry_after) if retry_after.isdigit() else 1.0
            self.in_flight = False
            first_failure = self.failed(message, first_failure, why)
            time.sleep(wait)

    def _verdict(self, message: Outgoing, response: httpx.Response) -> str:
        """The verdict on an answer: "200" when every entry was created or recorded before."""
        if response.status_code != 200:
            self.anomaly(f"{message.key}: {response.status_code} {response.text[:300]}")
            return str(response.status_code)
        statuses = [entry["response"]["status"] for entry in response.json()["entry"]]
        wrong = [status for status in statuses if status not in ("201 Created", "200 OK")]
        if wrong:
            self.anomaly(f"{message.key}: entries answered {wrong}")
            return "entries refused"
        if all(status == "200 OK" for status in statuses):
            with self.lock:
                self.delivery.already_received.append(message.key)
        return "200"

    def close(self) -> None:
        self.client.close()


def progress(senders: Sequence[Sender]) -> float:
    """The share of all messages answered so far."""
    total = sum(len(sender.messages) for sender in senders)
    return sum(sender.done for sender in senders) / total


def wait_for_progress(senders: Sequence[Sender], share: float, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while progress(senders) < share:
        if time.monotonic() > deadline:
            raise AssertionError(f"sending stuck at {progress(senders):.0%}")
        if not any(sender.thread.is_alive() for sender in senders):
            return
        time.sleep(0.02)


def outage_after(senders: Sequence[Sender], moment: float) -> tuple[float | None, float | None]:
    """(first failure, first answer after it) at or after `moment`, over all senders."""
    failures = sorted(t for s in senders for t in list(s.delivery.failures) if t >= moment)
    if not failures:
        return None, None
    successes = sorted(t for s in senders for t in list(s.delivery.successes))
    return failures[0], next((t for t in successes if t > failures[0]), None)
