"""What the API says of the processes `drgwatch up` supervises: /metrics and /readyz.

`drgwatch up` records its components in a state file in the data directory
(services/supervisor.py); the API reads it on every scrape and readiness check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.alerting.projector import beat
from services.metrics import SUPERVISOR_STATE_FILE, ComponentState, write_supervisor_state
from tests.api.conftest import Api


def running(restarts: int = 0, started_at: float | None = None) -> ComponentState:
    return ComponentState(
        pid=123,
        running=True,
        started_at=time.time() - 60 if started_at is None else started_at,
        restarts=restarts,
        last_exit="signal SIGKILL" if restarts else None,
    )


def record(target: Api, components: dict[str, ComponentState], supervisor_pid: int = 0) -> Path:
    """Write the state file as a supervisor (by default this test process) would."""
    supervisor_pid = supervisor_pid or os.getpid()
    state_file = Path(target.app.state.settings.data_dir) / SUPERVISOR_STATE_FILE
    write_supervisor_state(state_file, supervisor_pid=supervisor_pid, components=components)
    return state_file


def samples(metrics_text: str, family_name: str) -> dict[str, float]:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == family_name:
            return {sample.labels["component"]: sample.value for sample in family.samples}
    return {}


async def test_metrics_show_each_components_restarts_and_whether_it_runs(api: Api) -> None:
    restarting = ComponentState(
        pid=None, running=False, started_at=time.time() - 5, restarts=1, last_exit="code 1"
    )
    record(api, {"broker": running(), "worker": running(restarts=2), "api": restarting})

    text = (await api.client.get("/metrics")).text

    assert samples(text, "drgwatch_component_restarts") == {"broker": 0, "worker": 2, "api": 1}
    assert samples(text, "drgwatch_component_up") == {"broker": 1, "worker": 1, "api": 0}
    assert 'drgwatch_component_restarts_total{component="worker"} 2.0' in text


async def test_without_a_running_supervisor_there_is_nothing_to_show(api: Api) -> None:
    assert "drgwatch_component" not in (await api.client.get("/metrics")).text
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a supervisor that died without cleaning up: its file is stale
    record(api, {"worker": running(restarts=3)}, supervisor_pid=gone.pid)
    assert "drgwatch_component" not in (await api.client.get("/metrics")).text
    assert "components" not in (await api.client.get("/readyz")).json()["checks"]


async def test_readyz_names_a_component_that_is_restarting(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.app.state.publisher, "started", True)
    await beat(api.sessions, api.engine, worker_id="w-1", ready=True, partitions=8)
    gone = ComponentState(
        pid=None, running=False, started_at=time.time() - 9, restarts=0, last_exit="signal SIGKILL"
    )
    record(api, {"broker": gone, "worker": running(), "api": running()})

    response = await api.client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["components"] == "broker restarting (last exit: signal SIGKILL)"
    assert [name for name, value in checks.items() if value != "ok"] == ["components"]

    record(api, {"broker": running(restarts=1), "worker": running(), "api": running()})
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["components"] == "ok"


async def test_readyz_waits_for_the_restarted_worker_not_its_killed_predecessor(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.app.state.publisher, "started", True)
    # the killed worker's last heartbeat: still fresh, but written before the restart
    await beat(api.sessions, api.engine, worker_id="host:100", ready=True, partitions=8)
    restarted = time.time() + 0.05
    time.sleep(0.1)
    record(
        api,
        {"broker": running(), "worker": running(1, started_at=restarted), "api": running()},
    )

    response = await api.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"] != "ok"

    await beat(api.sessions, api.engine, worker_id="host:101", ready=True, partitions=8)
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
