"""Rules reloaded on the real stack: a rule file added and reloaded through the API is
evaluated by the running worker on the events sent afterwards, with no restart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import Stack, running_stack
from tests.integration.test_pipeline import admitted, line

pytestmark = pytest.mark.integration

BIG_DRUG = """version: 1
rules:
  - id: big-drug-line
    version: 1
    name: {zh: 大额药品医嘱, en: Large drug order}
    kind: order_bound
    severity: red
    params:
      bounds:
        drug: {max_amount: "5000"}
  - id: big-exam-line
    version: 1
    name: {zh: 大额检查医嘱, en: Large exam order}
    kind: order_bound
    severity: yellow
    params:
      bounds:
        exam: {max_amount: "3000"}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "empty.yaml").write_text("version: 1\nrules: []\n", encoding="utf-8")
    return directory


@pytest.fixture
def stack(postgres_url: str, tmp_path: Path, rules_dir: Path) -> Iterator[Stack]:
    env = {"DRGWATCH_RULES_DIR": str(rules_dir), "DRGWATCH_REFERENCE_POLL_SECONDS": "0.5"}
    workdir = tmp_path / "stack"
    workdir.mkdir()
    with running_stack(workdir, postgres_url, env) as running:
        yield running


def rule_alerts(stack: Stack, hospital: str, case: str) -> list[dict[str, Any]]:
    alerts = stack.all_alerts(hospital_id=hospital, case_id=case)
    return [alert for alert in alerts if alert["kind"] == "rule"]


def worker_uses(stack: Stack, generation: int) -> bool:
    """The worker logged that the rules of this registry generation are in force."""
    log = (stack.workdir / "worker0.log").read_text(encoding="utf-8", errors="replace")
    return f"rules of registry generation {generation} in force" in log


def test_a_rule_file_reloaded_fires_on_events_sent_afterwards(
    stack: Stack, rules_dir: Path
) -> None:
    hospital = f"H{uuid.uuid4().hex[:6]}"
    drug = {"category": "drug", "item": "IMATINIB"}
    # before: no rule about drug lines
    stack.post([admitted(hospital, "R1", "r1-a"), line(hospital, "R1", "r1-c", "6000.00", **drug)])
    stack.wait_for(lambda: (stack.case(hospital, "R1") or {}).get("events_applied") == 2)
    assert rule_alerts(stack, hospital, "R1") == []

    (rules_dir / "drugs.yaml").write_text(BIG_DRUG, encoding="utf-8")
    response = httpx.post(f"{stack.url}/v1/rules/reload", timeout=30)
    assert response.status_code == 200, response.text
    reloaded = response.json()
    assert reloaded["changed"] is True
    assert [(c["rule_id"], c["action"]) for c in reloaded["changes"]] == [
        ("big-drug-line", "added"),
        ("big-exam-line", "added"),
    ]
    # the worker notices the registry's new generation on its reference poll
    stack.wait_for(lambda: worker_uses(stack, reloaded["generation"]))

    stack.post([admitted(hospital, "R2", "r2-a"), line(hospital, "R2", "r2-c", "6000.00", **drug)])
    stack.wait_for(lambda: len(rule_alerts(stack, hospital, "R2")) == 1)
    [alert] = rule_alerts(stack, hospital, "R2")
    assert (alert["rule_id"], alert["rule_version"], alert["level"]) == ("big-drug-line", 1, "red")
    assert alert["event_id"] == "r2-c"
    assert "5000" in alert["text_en"]
    # the registry lists them as the file brought them
    listed = httpx.get(f"{stack.url}/v1/rules", timeout=10).json()
    assert [(i["rule_id"], i["source"], i["in_force"]) for i in listed["items"]] == [
        ("big-drug-line", "file:drugs.yaml", True),
        ("big-exam-line", "file:drugs.yaml", True),
    ]
    # the case charged before the reload raised nothing: rules apply from the next batch
    assert rule_alerts(stack, hospital, "R1") == []

    # switched off for the department through the API: the worker follows, no restart
    switched = httpx.put(
        f"{stack.url}/v1/rules/big-drug-line/switches",
        json={"hospital_id": hospital, "department": "CARDIO", "enabled": False},
        timeout=10,
    )
    assert switched.status_code == 200, switched.text
    generation = httpx.get(f"{stack.url}/v1/rules", timeout=10).json()["generation"]
    stack.wait_for(lambda: worker_uses(stack, generation))
    exam = {"category": "exam", "item": "PET-CT"}
    stack.post(
        [
            admitted(hospital, "R3", "r3-a"),
            line(hospital, "R3", "r3-c", "6000.00", **drug),
            line(hospital, "R3", "r3-e", "4000.00", **exam),
        ]
    )
    # the exam line's finding comes after the drug line was applied, in ledger order: by
    # then the drug line's finding, had the switch not held, would be there too
    stack.wait_for(lambda: len(rule_alerts(stack, hospital, "R3")) == 1)
    [alert] = rule_alerts(stack, hospital, "R3")
    assert (alert["rule_id"], alert["event_id"]) == ("big-exam-line", "r3-e")
