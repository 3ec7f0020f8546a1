"""Prometheus metrics exported at /metrics."""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# Labels take values from small fixed sets only (sources, statuses, reasons, levels):
# never a case, patient, item or hospital, each of which would be a series kept for good.

EVENTS_INGESTED = Counter(
    "drgwatch_events_ingested_total",
    "Events submitted, by source (json, fhir, hl7, intake) and status (accepted,"
    " duplicate, rejected)",
    ["source", "status"],
)
EVENTS_REJECTED = Counter(
    "drgwatch_events_rejected_total",
    "Refused submissions by source and reason: invalid (not JSON, not events, an event"
    " breaking the contract), too_large, forbidden (another hospital's), ack_ae / ack_ar"
    " (an HL7 message answered with that code)",
    ["source", "reason"],
)


def count_ingested(source: str, status: str, events: int) -> None:
    """Count a submission's events of one status; events refused one by one (in a batch
    otherwise accepted) are `invalid`."""
    if status == "rejected":
        count_rejected(source, "invalid", events)
    else:
        EVENTS_INGESTED.labels(source=source, status=status).inc(events)


def count_rejected(source: str, reason: str, events: int = 1) -> None:
    """Count refused events (at least one per refused submission) of a source."""
    EVENTS_INGESTED.labels(source=source, status="rejected").inc(events)
    EVENTS_REJECTED.labels(source=source, reason=reason).inc(events)


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


ALERTS_RAISED = Counter(
    "drgwatch_alerts_raised_total",
    "Alerts the worker raised, by kind (level, forecast, rule), level and transition",
    ["kind", "level", "transition"],
)
EVENT_TO_ALERT_SECONDS = Histogram(
    "drgwatch_event_to_alert_seconds",
    "From ingest's receipt of an event (its record's timestamp, the ledger's received_at)"
    " to the alert it raised being sent, by alert kind",
    ["kind"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
# the label sets an alert may carry; anything else is counted as "other"
ALERT_KINDS = frozenset({"level", "forecast", "rule"})
ALERT_LEVELS = frozenset({"none", "blue", "yellow", "red"})
ALERT_TRANSITIONS = frozenset({"escalated", "de-escalated", "resolved", "projected", "raised"})


def count_alert(alert: Mapping[str, Any], *, received_at: float | None, raised_at: float) -> None:
    """Count one alert the worker sends, and its delay since ingest received the event
    that raised it (both epoch seconds; a record without a timestamp has no delay)."""
    kind = _known(alert.get("kind"), ALERT_KINDS)
    ALERTS_RAISED.labels(
        kind=kind,
        level=_known(alert.get("level"), ALERT_LEVELS),
        transition=_known(alert.get("transition"), ALERT_TRANSITIONS),
    ).inc()
    if received_at is not None:
        EVENT_TO_ALERT_SECONDS.labels(kind=kind).observe(max(0.0, raised_at - received_at))


def _known(value: Any, values: frozenset[str]) -> str:
    return value if value in values else "other"


EVENTS_APPLIED = Counter(
    "drgwatch_worker_events_applied_total",
    "Events-topic records the worker applied (dead letters included)",
)
WORKER_DEAD_LETTERS = Counter(
    "drgwatch_worker_dead_letters_total",
    "Events-topic records the worker could not apply and sent to the dead-letter topic",
)
CONSUMER_LAG = Gauge(
    "drgwatch_worker_consumer_lag",
    "Records of the events topic not yet applied, per partition this worker holds"
    " (the partition's end offset minus the first offset not yet applied)",
    ["partition"],
)


def show_consumer_lag(lags: Mapping[int, int]) -> None:
    """Replace the lag series with those of the partitions the worker holds now."""
    CONSUMER_LAG.clear()
    for partition, lag in lags.items():
        CONSUMER_LAG.labels(partition=str(partition)).set(lag)


OPEN_CASES = Gauge(
    "drgwatch_open_cases",
    "Cases not discharged, by level, as the API last counted them"
    " (every DRGWATCH_PIPELINE_METRICS_SECONDS at most, when /metrics is read)",
    ["level"],
)
LEDGER_UNPUBLISHED = Gauge(
    "drgwatch_ledger_unpublished",
    "Accepted events still waiting in the ingest ledger for the relay to publish them"
    " (counted as drgwatch_open_cases is)",
)

READY = Gauge(
    "drgwatch_ready",
    "1 when this API's /readyz last answered ready, 0 when it answered 503",
)
READINESS_CHANGES = Counter(
    "drgwatch_readiness_changes",
    "Times this API's /readyz answer changed between ready and not ready",
)


class _Readiness:
    """The process's last /readyz answer (None before the first)."""

    last: bool | None = None


def show_readiness(ready: bool) -> None:
    """Record a /readyz answer, counting it when it differs from the previous one."""
    if _Readiness.last is not None and _Readiness.last != ready:
        READINESS_CHANGES.inc()
    _Readiness.last = ready
    READY.set(1 if ready else 0)


class DatabasePools:
    """A collector: the connections of the process's database pools, in use and idle.

    Engines are watched weakly: one an app disposed of and dropped leaves the figures."""

    def __init__(self) -> None:
        self._engines: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()

    def watch(self, engine: AsyncEngine) -> None:
        self._engines.add(engine)

    def collect(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "drgwatch_db_pool_connections",
            "Database pool connections by state (in_use, idle), over the process's pools"
            " (an in-memory SQLite database's pool keeps no count)",
            labels=["state"],
        )
        in_use = idle = 0
        for engine in list(self._engines):
            pool: Any = engine.sync_engine.pool
            # a QueuePool counts its connections; an in-memory SQLite database's pool not
            if hasattr(pool, "checkedout") and hasattr(pool, "checkedin"):
                in_use += pool.checkedout()
                idle += pool.checkedin()
        connections.add_metric(["in_use"], in_use)
        connections.add_metric(["idle"], idle)
        yield connections


DATABASE_POOLS = DatabasePools()
REGISTRY.register(DATABASE_POOLS)
