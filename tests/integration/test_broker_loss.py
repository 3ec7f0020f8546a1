"""The embedded broker keeps nothing on disk: after it dies, the ledger brings it all back."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text

from services.storage.engine import make_engine
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


def _database(stack: Stack, sql: str, **params: Any) -> list[Any]:
    """Run one statement on the stack's database (PostgreSQL or SQLite), committed."""

    async def run() -> list[Any]:
        engine = make_engine(stack.database_url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(sql), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _projector_offsets(stack: Stack) -> tuple[dict[int, int | None], dict[int, int]]:
    """The projectors' committed offsets on the changelog, and its end offsets."""

    async def read() -> tuple[dict[int, int | None], dict[int, int]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=f"127.0.0.1:{stack.broker_port}",
            group_id=f"{stack.prefix}-projector",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            topic = stack.settings.case_changelog_topic
            partitions = [TopicPartition(topic, p) for p in range(stack.partitions)]
            ends = await consumer.end_offsets(partitions)
            committed = {tp.partition: await consumer.committed(tp) for tp in partitions}
            return committed, {tp.partition: end for tp, end in ends.items()}
        finally:
            await consumer.stop()

    return asyncio.run(read())


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A case state without what depends on when it was worked out (alerts' raise time)."""
    alerts = [{k: v for k, v in alert.items() if k != "raised_at"} for alert in state["alerts"]]
    return {**state, "alerts": alerts}


def test_broker_loss_restored_from_snapshots_ends_as_a_whole_ledger_replay(stack: Stack) -> None:
    h = f"H{uuid.uuid4().hex[:6]}"
    cases = [f"C{n}" for n in range(6)]
    keys = [f"{h}/{c}" for c in cases]
    expected: dict[str, Decimal] = {c: Decimal(0) for c in cases}

    def reconciled() -> bool:
        return all((stack.case(h, c) or {}).get("total_cost") == str(expected[c]) for c in cases)

    def snapshots() -> dict[str, tuple[int, bytes]]:
        rows = _database(
            stack,
            "SELECT case_id, next_sequence, state FROM case_snapshots WHERE hospital_id = :h",
            h=h,
        )
        return {row[0]: (int(row[1]), bytes(row[2])) for row in rows}

    first = [admitted(h, c, f"{c}-a") for c in cases]
    first += [line(h, c, f"{c}-0", of_standard("0.50")) for c in cases]
    stack.post(first)
    for c in cases:
        expected[c] += Decimal(of_standard("0.50"))
    stack.wait_for(reconciled, timeout=60, interval=0.25)
    stack.wait_for(lambda: all(n == 3 for n, _ in snapshots().values()), timeout=30)
    earlier = snapshots()["C1"]
    # then blue, yellow, red for every case
    for n, fraction in enumerate(["0.41", "0.05", "0.05"], start=1):
        stack.post([line(h, c, f"{c}-{n}", of_standard(fraction)) for c in cases])
        for c in cases:
            expected[c] += Decimal(of_standard(fraction))
    stack.wait_for(reconciled, timeout=60, interval=0.25)
    stack.wait_for(lambda: all(n == 6 for n, _ in snapshots().values()), timeout=30)
    alerts_before = {a["alert_id"] for a in stack.all_alerts(hospital_id=h)}
    assert len(alerts_before) == 3 * len(cases)

    # the broker dies; the API ledgers one more event per case meanwhile
    stack.kill(stack.broker)
    stack.post([line(h, c, f"{c}-down", "7.00", item="LAB", category="lab") for c in cases])
    for c in cases:
        expected[c] += Decimal("7.00")
    stack.kill(stack.api)
    for worker in stack.workers:
        stack.kill(worker)
    # C0's snapshot was never written, C1's is behind (the projector lagged)
    _database(stack, "DELETE FROM case_snapshots WHERE hospital_id = :h AND case_id = 'C0'", h=h)
    _database(
        stack,
        "UPDATE case_snapshots SET next_sequence = :n, state = :state"
        " WHERE hospital_id = :h AND case_id = 'C1'",
        n=earlier[0],
        state=earlier[1],
        h=h,
    )
    queued = stack.start_broker(replay=False, from_snapshots=True)
    # only the tail: C0 whole (6 entries), C1 from its 3rd, the others their last
    tail = 6 + 4 + (len(cases) - 2)
    assert queued == tail
    unpublished = _database(
        stack,
        "SELECT case_id, case_seq FROM ingest_ledger WHERE hospital_id = :h AND NOT published",
        h=h,
    )
    assert sorted((row[0], int(row[1])) for row in unpublished) == sorted(
        [("C0", n) for n in range(1, 7)]
        + [("C1", n) for n in range(3, 7)]
        + [(c, 6) for c in cases[2:]]
    )
    seeded = {k: v for k, v in stack.changelog_states().items() if k.startswith(f"{h}/")}
    assert set(seeded) == set(keys[1:])
    assert seeded[f"{h}/C1"]["next_sequence"] == 3
    # the projectors start past the seeded states, which the database holds already
    committed, ends = _projector_offsets(stack)
    assert committed == ends and all(end > 0 for end in ends.values())
    stack.start_worker()
    stack.start_api()
    stack.wait_ready()
    stack.wait_for(reconciled, timeout=90, interval=0.25)

    def all_applied() -> dict[str, dict[str, Any]] | None:
        states = stack.changelog_states()
        done = all(states.get(key, {}).get("next_sequence") == 7 for key in keys)
        return states if done else None

    stack.wait_for(all_applied, timeout=60, interval=0.5)
    from_snapshots = all_applied()
    assert from_snapshots is not None
    alerts_after = stack.all_alerts(hospital_id=h)
    assert len(alerts_after) == len({a["alert_id"] for a in alerts_after})
    assert {a["alert_id"] for a in alerts_after} == alerts_before
    views = _settled_views(stack, h, cases, from_snapshots)

    # the same broker loss, restored the old way: the whole ledger replayed into an empty table
    stack.kill(stack.broker)
    stack.kill(stack.api)
    for worker in stack.workers:
        stack.kill(worker)
    stack.start_broker(replay=True)
    assert stack.changelog_states() == {}
    stack.start_worker()
    stack.start_api()
    stack.wait_ready()
    stack.wait_for(all_applied, timeout=90, interval=0.5)
    whole_ledger = all_applied()
    assert whole_ledger is not None
    for key in keys:
        assert _comparable(from_snapshots[key]) == _comparable(whole_ledger[key]), key
    assert {a["alert_id"] for a in stack.all_alerts(hospital_id=h)} == alerts_before
    assert _settled_views(stack, h, cases, whole_ledger) == views


def _settled_views(
    stack: Stack, h: str, cases: list[str], states: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The API's case views once they show the changelog's `states` (less `updated_at`)."""
    views: dict[str, dict[str, Any]] = {}

    def settled() -> bool:
        for c in cases:
            view = stack.case(h, c) or {}
            if view.get("events_applied") != states[f"{h}/{c}"]["events_applied"]:
                return False
            views[c] = {k: v for k, v in view.items() if k != "updated_at"}
        return True

    stack.wait_for(settled, timeout=30, interval=0.25)
    return views


def test_drgwatch_restore_refuses_a_changelog_that_holds_records(stack: Stack) -> None:
    h = f"H{uuid.uuid4().hex[:6]}"
    stack.post([admitted(h, "C1", "C1-a")])
    stack.wait_for(lambda: stack.case(h, "C1") is not None, timeout=60, interval=0.25)
    unpublished = "SELECT seq FROM ingest_ledger WHERE NOT published"
    stack.wait_for(lambda: not _database(stack, unpublished), timeout=30, interval=0.25)
    restore = subprocess.run(
        [sys.executable, "-m", "services.cli", "restore", "--from-snapshots"],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restore.returncode == 1, restore.stdout + restore.stderr
    assert "holds records already; only a new cluster" in restore.stderr
    assert not _database(stack, unpublished)
