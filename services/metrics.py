"""Prometheus metrics exported at /metrics."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

EVENTS_INGESTED = Counter(
    "drgwatch_events_ingested_total", "Events submitted to POST /v1/events", ["status"]
)
HL7_MESSAGES = Counter(
    "drgwatch_hl7_messages_total",
    "HL7 v2 messages answered (POST /v1/hl7, MLLP), by acknowledgement code",
    ["code"],
)
EVENTS_BACKDATED = Counter(
    "drgwatch_events_backdated_total",
    "Events accepted although dated more than DRGWATCH_EVENT_BACKDATED_WARNING_DAYS"
    " before they were received",
)
REQUEST_SECONDS = Histogram(
    "drgwatch_http_request_seconds", "HTTP request latency", ["method", "route", "status"]
)
SEQUENCE_GAPS_RELEASED = Counter(
    "drgwatch_sequence_gaps_released_total",
    "Ledger sequence numbers a case stopped waiting for after the gap timeout",
)
EVENTS_UNSEALED = Counter(
    "drgwatch_worker_unsealed_events_total",
    "Events-topic records the worker refused to the dead-letter topic for a missing or"
    " wrong seal: not published from the ingest ledger",
)
INGEST_UNAVAILABLE = Counter(
    "drgwatch_ingest_unavailable_total", "Submissions answered 503 because the ledger was down"
)
WEBHOOK_DELIVERIES = Counter(
    "drgwatch_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retrying, failed, gone)",
    ["outcome"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "drgwatch_webhook_attempt_seconds", "Duration of one webhook POST, until its answer"
)
SIGN_IN_FAILURES = Counter(
    "drgwatch_sign_in_failures_total",
    "Refused sign-ins (POST /v1/session) by reason: unknown_name, no_password, disabled,"
    " wrong_password, throttled",
    ["reason"],
)
ALERT_ACTIONS = Counter(
    "drgwatch_alert_actions_total",
    "Actions on alerts (acknowledge, resolve, review) by the status they led to",
    ["action", "status"],
)

# `drgwatch up` runs the broker, the worker and the API as processes it restarts when
# they exit. It is not the API process, so it records each component in a small file
# in the data directory, and the API reads that file on every scrape and readiness
# check: the counts survive a restarted API, and a stack without the supervisor
# (production, the tests' harness) has no file and shows nothing.
SUPERVISOR_STATE_FILE = "supervisor.json"


@dataclass(frozen=True)
class ComponentState:
    """One supervised process as `drgwatch up` last recorded it."""

    pid: int | None
    running: bool
    started_at: float | None  # wall clock (epoch seconds) of its latest start
    restarts: int  # times started again since `drgwatch up` began
    last_exit: str | None  # e.g. "signal SIGKILL", "code 1"


def write_supervisor_state(
    path: Path, *, supervisor_pid: int, components: Mapping[str, ComponentState]
) -> None:
    """Replace the state file in one step, so a reader never sees half of it."""
    body = {
        "supervisor_pid": supervisor_pid,
        "components": {name: asdict(state) for name, state in components.items()},
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(body, indent=1))
    os.replace(partial, path)


def read_supervisor_state(path: Path) -> dict[str, ComponentState] | None:
    """The components of a running `drgwatch up`; None without one (or its file)."""
    try:
        body = json.loads(path.read_text())
        if not _alive(int(body["supervisor_pid"])):
            return None
        return {str(name): ComponentState(**fields) for name, fields in body["components"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


class SupervisedComponents:
    """A collector: restarts and liveness of the processes `drgwatch up` supervises."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file

    def collect(self) -> Iterator[Metric]:
        components = read_supervisor_state(self.state_file)
        if components is None:
            return
        restarts = CounterMetricFamily(
            "drgwatch_component_restarts",
            "Times drgwatch up started a component again after it exited or with the broker",
            labels=["component"],
        )
        up = GaugeMetricFamily(
            "drgwatch_component_up",
            "1 while the component's process runs under drgwatch up, 0 while it is restarting",
            labels=["component"],
        )
        for name, state in sorted(components.items()):
            restarts.add_metric([name], state.restarts)
            up.add_metric([name], 1 if state.running else 0)
        yield restarts
        yield up


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
