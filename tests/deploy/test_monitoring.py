"""The operators' view: Prometheus's alert rules and the Grafana dashboard ask only for
metrics the services export, read from the /metrics of a started API, worker and Kafka
intake (not from a list kept by hand), and the rules pass `promtool check rules`.

The scrape is of a real stack (tansu, PostgreSQL, the worker's Faust web server): one case
posted to it goes over the red line, so that the worker's alert, lag and apply figures
and the API's open-case gauge are shown with values, not only declared. Its events
occurred days before they are posted: the worker's event-to-alert delay counts from
ingest's receipt, not from then.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.metrics import SUPERVISOR_STATE_FILE, ComponentState, write_supervisor_state
from services.ports import spare_port
from tests.deploy.test_deploy_files import COMPOSE_FILE, DEPLOY, load_yaml_docs
from tests.integration.harness import running_stack

RULES = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "drgwatch.json"
METRIC_NAME = re.compile(r"\bdrgwatch_[a-z0-9_]+")
# the sample names a family of each type is exposed under
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
}


def rules() -> list[dict[str, Any]]:
    (document,) = load_yaml_docs(RULES)
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> dict[str, list[str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return {
        panel["title"]: [target["expr"] for target in panel["targets"]]
        for panel in dashboard["panels"]
    }


class Scrape:
    """The families one /metrics answer declared, and its samples."""

    def __init__(self, text: str) -> None:
        self.families = list(text_string_to_metric_families(text))

    def names(self) -> set[str]:
        return {
            family.name + suffix
            for family in self.families
            for suffix in SUFFIXES.get(family.type, ("",))
        }

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [
            (sample.labels, sample.value)
            for family in self.families
            for sample in family.samples
            if sample.name == name
        ]


def wait_for_scrape(url: str, ready: Any, timeout: float = 60) -> Scrape:
    """Scrape `url` until `ready(scrape)` holds."""
    deadline = time.monotonic() + timeout
    scrape = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                scrape = Scrape(response.text)
                if ready(scrape):
                    return scrape
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url}: not as expected in {timeout}s; last scrape {scrape!r}")


# the case's events occurred this long before they are posted
CLINICAL_AGE = timedelta(days=3)


def red_case() -> list[dict[str, Any]]:
    hospital, case = f"H{uuid.uuid4().hex[:6]}", "C1"
    admitted = datetime.now(UTC).astimezone(timezone(timedelta(hours=8))) - CLINICAL_AGE
    at = admitted.isoformat(timespec="seconds")
    common = {"hospital_id": hospital, "case_id": case, "department": "CARDIO"}
    return [
        {
            **common,
            "event_id": "a1",
            "type": "admitted",
            "occurred_at": at,
            "drg_code": "FM15",
            "insurance_scheme": "employee",
            "admitted_at": at,
        },
        {
            **common,
            "event_id": "c1",
            "type": "charge",
            "occurred_at": (admitted + timedelta(hours=2)).isoformat(timespec="seconds"),
            "item_code": "STENT",
            "item_name": "stent",
            "category": "consumable",
            "quantity": "1",
            "unit_price": "50000.00",
            "amount": "50000.00",
        },
    ]


@pytest.fixture(scope="module")
def scrapes(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Scrape]]:
    worker_port, intake_port = spare_port(), spare_port()
    env = {
        "DRGWATCH_WEB_ENABLED": "true",
        "DRGWATCH_WEB_PORT": str(worker_port),
        "DRGWATCH_INTAKE_METRICS_PORT": str(intake_port),
        "DRGWATCH_PIPELINE_METRICS_SECONDS": "0",
    }
    with running_stack(tmp_path_factory.mktemp("monitoring"), postgres_url, env) as stack:
        stack.start_intake()
        # the supervisor's state file, as `drgwatch up` writes it (this process standing in
        # for the supervisor): the API exports the components' restarts from it
        write_supervisor_state(
            stack.workdir / SUPERVISOR_STATE_FILE,
            supervisor_pid=os.getpid(),
            components={
                name: ComponentState(
                    pid=None, running=True, started_at=None, restarts=0, last_exit=None
                )
                for name in ("broker", "worker", "api")
            },
        )
        stack.post(red_case())
        found = {
            "worker": wait_for_scrape(
                f"http://127.0.0.1:{worker_port}/metrics",
                lambda scrape: (
                    scrape.samples("drgwatch_alerts_raised_total")
                    and scrape.samples("drgwatch_worker_consumer_lag")
                ),
            ),
            "api": wait_for_scrape(
                f"{stack.url}/metrics",
                lambda scrape: any(
                    labels == {"level": "red"} and value >= 1
                    for labels, value in scrape.samples("drgwatch_open_cases")
                ),
            ),
            "intake": wait_for_scrape(
                f"http://127.0.0.1:{intake_port}/metrics",
                lambda scrape: "drgwatch_intake_records_total" in scrape.names(),
            ),
        }
        yield found


def exported(scrapes: dict[str, Scrape]) -> set[str]:
    return set().union(*(scrape.names() for scrape in scrapes.values()))


@pytest.mark.integration
def test_the_worker_exports_the_pipeline_figures(scrapes: dict[str, Scrape]) -> None:
    worker = scrapes["worker"]
    raised = {
        (labels["kind"], labels["level"], labels["transition"]): value
        for labels, value in worker.samples("drgwatch_alerts_raised_total")
    }
    assert raised.get(("level", "red", "escalated")) == 1, raised
    # the charge occurred days ago, was posted a moment ago: the delay counted is the
    # pipeline's, from ingest's receipt to the alert (well under a minute), not the days
    assert worker.samples("drgwatch_event_to_alert_seconds_count") == [({"kind": "level"}, 1.0)]
    [(_, delay)] = worker.samples("drgwatch_event_to_alert_seconds_sum")
    assert 0 <= delay < 60, delay
    within = {
        labels["le"]: value
        for labels, value in worker.samples("drgwatch_event_to_alert_seconds_bucket")
    }
    assert within["60.0"] == 1 and within["+Inf"] == 1, within
    applied = worker.samples("drgwatch_worker_events_applied_total")
    assert applied and applied[0][1] >= 2, applied
    lags = worker.samples("drgwatch_worker_consumer_lag")
    assert lags and all(value == 0 for _labels, value in lags), lags
    assert {labels["state"] for labels, _ in worker.samples("drgwatch_db_pool_connections")} == {
        "in_use",
        "idle",
    }


@pytest.mark.integration
def test_the_api_exports_the_pipeline_figures(scrapes: dict[str, Scrape]) -> None:
    api = scrapes["api"]
    assert {
        (labels["source"], labels["status"])
        for labels, _ in api.samples("drgwatch_events_ingested_total")
    } >= {("json", "accepted")}
    levels = {labels["level"] for labels, _ in api.samples("drgwatch_open_cases")}
    assert {"none", "blue", "yellow", "red"} <= levels
    assert api.samples("drgwatch_ledger_unpublished")
    idle = dict(
        (labels["state"], value) for labels, value in api.samples("drgwatch_db_pool_connections")
    )
    assert idle.get("idle", 0) >= 1, idle
    # the readiness the harness waited for was recorded
    assert api.samples("drgwatch_ready") == [({}, 1.0)]
    restarts = api.samples("drgwatch_component_restarts_total")
    assert {labels["component"] for labels, _ in restarts} == {"broker", "worker", "api"}


@pytest.mark.integration
def test_rules_and_dashboard_use_only_exported_metrics(scrapes: dict[str, Scrape]) -> None:
    names = exported(scrapes)
    for rule in rules():
        unknown = set(METRIC_NAME.findall(rule["expr"])) - names
        assert not unknown, f"rule {rule['alert']} uses {sorted(unknown)}, not exported"
    for title, expressions in dashboard_queries().items():
        for expression in expressions:
            unknown = set(METRIC_NAME.findall(expression)) - names
            assert not unknown, f"panel {title!r} queries {sorted(unknown)}, not exported"


def test_the_rules_cover_the_pipeline() -> None:
    used = {name for rule in rules() for name in METRIC_NAME.findall(rule["expr"])}
    assert {
        "drgwatch_worker_consumer_lag",
        "drgwatch_worker_dead_letters_total",
        "drgwatch_webhook_deliveries_total",
        "drgwatch_readiness_changes_total",
    } <= used
    workers_down = [rule for rule in rules() if 'job="drgwatch-worker"' in rule["expr"]]
    assert workers_down, "no rule for a worker that is down"
    for rule in rules():
        assert rule["alert"].startswith("Drgwatch"), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_dashboard_shows_the_pipeline() -> None:
    used = {
        name
        for expressions in dashboard_queries().values()
        for expression in expressions
        for name in METRIC_NAME.findall(expression)
    }
    assert {
        "drgwatch_worker_consumer_lag",
        "drgwatch_event_to_alert_seconds_bucket",
        "drgwatch_alerts_raised_total",
        "drgwatch_open_cases",
        "drgwatch_db_pool_connections",
        "drgwatch_events_rejected_total",
    } <= used


def test_prometheus_loads_the_rules() -> None:
    (config,) = load_yaml_docs(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    (compose,) = load_yaml_docs(COMPOSE_FILE)
    mounts = [str(volume) for volume in compose["services"]["prometheus"]["volumes"]]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def find_promtool() -> str | None:
    """promtool on the PATH, or where scripts/ensure-services puts it: beside Python."""
    beside = Path(sys.executable).parent / "promtool"
    return shutil.which("promtool") or (str(beside) if beside.exists() else None)


def test_promtool_accepts_the_rules() -> None:
    promtool = find_promtool()
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/ensure-services takes it from Debian)")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_accepts_the_config(tmp_path: Path) -> None:
    promtool = find_promtool()
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/ensure-services takes it from Debian)")
    # the config names the rules where the compose file mounts them
    config = PROMETHEUS_CONFIG.read_text().replace("/etc/prometheus/alerts.yml", str(RULES))
    (tmp_path / "prometheus.yml").write_text(config)
    checked = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
