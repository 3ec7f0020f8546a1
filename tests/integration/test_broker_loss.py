"""The embedded broker keeps nothing on disk: after it dies, the ledger brings it all back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Stack, running_stack
from tests.integration.test_pipeline import admitted, line, of_standard

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """The stack on PostgreSQL (production) and on the SQLite file (the embedded default)."""
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}"
    with running_stack(tmp_path, database_url) as running:
        yield running


def test_broker_sigkill_then_restart_replays_every_acknowledged_event_once(stack: Stack) -> None:
    h = f"H{uuid.uuid4().hex[:6]}"
    cases = [f"C{n}" for n in range(10)]
    expected: dict[str, Decimal] = {c: Decimal(0) for c in cases}
    batch: list[dict[str, Any]] = [admitted(h, c, f"{c}-a") for c in cases]
    # 0.50, then 0.91 (blue), 0.96 (yellow), 1.01 (red) of the standard
    for n, fraction in enumerate(["0.50", "0.41", "0.05", "0.05"]):
        for c in cases:
            amount = Decimal(of_standard(fraction))
            batch.append(line(h, c, f"{c}-{n}", str(amount)))
            expected[c] += amount
    stack.post(batch)

    def reconciled() -> bool:
        return all((stack.case(h, c) or {}).get("total_cost") == str(expected[c]) for c in cases)

    stack.wait_for(reconciled, timeout=60, interval=0.25)
    alerts_before = {a["alert_id"]: a for a in stack.all_alerts(hospital_id=h)}
    assert len(alerts_before) == 3 * len(cases)  # blue, yellow, red per case

    # the broker dies with everything it held; then the whole stack comes back
    stack.kill(stack.broker)
    stack.kill(stack.api)
    for worker in stack.workers:
        stack.kill(worker)
    stack.start_broker(replay=True)
    stack.start_worker()
    stack.start_api()
    recovery = stack.wait_ready()
    late = [line(h, c, f"{c}-late", "10.00", item="LAB", category="lab") for c in cases]
    stack.post(late)
    for c in cases:
        expected[c] += Decimal("10.00")
    stack.wait_for(reconciled, timeout=90, interval=0.25)
    print(f"\nbroker killed; stack ready again in {recovery:.1f}s; all totals reconciled")
    for c in cases:
        case = stack.case(h, c)
        assert case is not None and case["events_applied"] == 6 and case["level"] == "red"
    alerts_after = stack.all_alerts(hospital_id=h)
    assert len(alerts_after) == len({a["alert_id"] for a in alerts_after})
    assert {a["alert_id"] for a in alerts_after} == set(alerts_before)
