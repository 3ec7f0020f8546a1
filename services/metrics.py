"""Prometheus metrics exported at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_INGESTED = Counter(
    "drgwatch_events_ingested_total", "Events submitted to POST /v1/events", ["status"]
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
ALERT_ACTIONS = Counter(
    "drgwatch_alert_actions_total",
    "Actions on alerts (acknowledge, resolve, review) by the status they led to",
    ["action", "status"],
)
