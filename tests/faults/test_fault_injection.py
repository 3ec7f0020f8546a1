"""Nothing lost, nothing doubled: the real stack under faults, against a recount.

Each test drives a generated stream of more than 20,000 events over 300 cases (with
duplicates, credits, regroups, late and out-of-order events and some invalid ones)
through POST /v1/events, while it breaks one part of the stack on purpose:

1. the Faust worker is SIGKILLed three times at random moments and restarted;
2. two workers share the partitions, one is SIGKILLed, the other takes over, it returns;
3. the API process is SIGKILLed twice while events are being posted, and restarted;
4. the embedded broker (memory only) is SIGKILLed and the stack restarted;
5. the PostgreSQL database refuses connections for a while.

At the end every case's total (to the cent), cost by category, level, DRG, standard
and event count, and the set of alerts, must equal `workload.recount`. The figures
(events, kills, recovery times) are printed at the end of the run.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.driver import AlertStreamReader, Driver
from tests.faults.report import report
from tests.faults.workload import Workload, catalogue_body, generate, recount
from tests.integration.harness import Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.faults]

EVENTS_PER_SECOND = 900.0  # offered by the posters together
MIN_EVENTS = 20_000
CATCH_UP_TIMEOUT = 300.0
PROBE_TIMEOUT = 180.0
PROBE_DRG = "FX13"  # explicit standard 30000.00 in the suite's catalogue


@dataclass
class Run:
    stack: Stack
    workload: Workload
    driver: Driver
    probe_cases: list[str]
    probes: int = 0
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def hospital_id(self) -> str:
        return self.workload.hospital_id


@pytest.fixture
def stack(own_postgres_url: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(tmp_path, own_postgres_url) as running:
        yield running


def post_until_answered(stack: Stack, events: list[dict[str, Any]]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.post(f"{stack.url}/v1/events", json={"events": events}, timeout=30)
            if response.status_code == 202:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("probe events not accepted within 60 s")
        time.sleep(0.2)


def prepare(
    stack: Stack,
    seed: int,
    *,
    cases: int = 300,
    min_events: int = MIN_EVENTS,
    events_per_second: float = EVENTS_PER_SECOND,
) -> Run:
    """Generate the workload, load its catalogue and wait until the worker prices with it."""
    hospital_id = f"HF{uuid.uuid4().hex[:6]}"
    workload = generate(seed, hospital_id, cases=cases)
    assert workload.distinct_valid_events >= min_events
    response = httpx.post(
        f"{stack.url}/v1/drg-catalogues", json=catalogue_body(hospital_id), timeout=30
    )
    assert response.status_code == 201, response.text
    # one probe case on every partition: a probe shows when each partition moves again
    probe_cases: dict[int, str] = {}
    for n in range(1000):
        probe_cases.setdefault(stack.partition_of(hospital_id, f"PROBE{n}"), f"PROBE{n}")
        if len(probe_cases) == stack.partitions:
            break
    run = Run(
        stack=stack,
        workload=workload,
        driver=Driver(stack.url, workload, events_per_second=events_per_second),
        probe_cases=sorted(probe_cases.values()),
    )
    admissions = [
        {
            "event_id": f"{case_id}-a",
            "type": "admitted",
            "hospital_id": hospital_id,
            "case_id": case_id,
            "occurred_at": "2026-10-01T08:00:00+08:00",
            "department": "PROBE",
            "drg_code": PROBE_DRG,
            "insurance_scheme": "employee",
            "admitted_at": "2026-10-01T08:00:00+08:00",
        }
        for case_id in run.probe_cases
    ]
    post_until_answered(stack, admissions)

    def priced_by_the_suite_catalogue() -> bool:
        cases = stack.cases(hospital_id)
        return all(
            cases.get(case_id, {}).get("standard_cost") == "30000.00" for case_id in run.probe_cases
        )

    stack.wait_for(priced_by_the_suite_catalogue, timeout=60, interval=0.25)
    return run


def probe(run: Run) -> float:
    """Post a small charge to every probe case; seconds until all of them are visible."""
    run.probes += 1
    started = time.monotonic()
    post_until_answered(
        run.stack,
        [
            {
                "event_id": f"{case_id}-p{run.probes}",
                "type": "charge",
                "hospital_id": run.hospital_id,
                "case_id": case_id,
                "occurred_at": "2026-10-01T09:00:00+08:00",
                "department": "PROBE",
                "item_code": "PROBE",
                "item_name": "Probe",
                "category": "other",
                "quantity": "1",
                "unit_price": "0.01",
                "amount": "0.01",
            }
            for case_id in run.probe_cases
        ],
    )

    def visible() -> bool:
        cases = run.stack.cases(run.hospital_id)
        return all(
            cases.get(case_id, {}).get("events_applied") == 1 + run.probes
            for case_id in run.probe_cases
        )

    run.stack.wait_for(visible, timeout=PROBE_TIMEOUT, interval=0.1)
    return time.monotonic() - started


def finish(run: Run, title: str, stream: AlertStreamReader | None = None) -> None:
    """Wait for the posters and the pipeline, compare with the recount, report figures.

    With `stream`, also check that the live stream pushed every alert exactly once.
    """
    stack, driver = run.stack, run.driver
    driver.join(timeout=600)
    expected_cases, expected_alerts = recount(run.workload)
    posted_at = time.monotonic()

    def reconciled() -> bool:
        cases = stack.cases(run.hospital_id)
        return all(
            case_id in cases
            and cases[case_id]["events_applied"] == want.events_applied
            and Decimal(cases[case_id]["total_cost"]) == want.total_cost
            for case_id, want in expected_cases.items()
        )

    try:
        stack.wait_for(reconciled, timeout=CATCH_UP_TIMEOUT, interval=0.5)
    except AssertionError as timeout:
        cases = stack.cases(run.hospital_id)
        wrong = {
            case_id: (cases.get(case_id, {}).get("total_cost"), str(want.total_cost))
            for case_id, want in expected_cases.items()
            if Decimal(cases.get(case_id, {}).get("total_cost", "-1")) != want.total_cost
        }
        raise AssertionError(
            f"{len(wrong)} cases never reconciled, e.g. {list(wrong.items())[:5]}"
        ) from timeout
    catch_up = time.monotonic() - posted_at

    cases = stack.cases(run.hospital_id)
    mismatches = []
    for case_id, want in expected_cases.items():
        got = cases[case_id]
        expected_view = {
            "total_cost": want.total_cost,
            "level": want.level,
            "drg_code": want.drg_code,
            "standard_cost": want.standard_cost,
            "status": "discharged" if want.discharged else "open",
            "events_applied": want.events_applied,
            "cost_by_category": want.cost_by_category,
        }
        actual_view = {
            "total_cost": Decimal(got["total_cost"]),
            "level": got["level"],
            "drg_code": got["drg_code"],
            "standard_cost": None
            if got["standard_cost"] is None
            else Decimal(got["standard_cost"]),
            "status": got["status"],
            "events_applied": got["events_applied"],
            "cost_by_category": {k: Decimal(v) for k, v in got["cost_by_category"].items()},
        }
        if actual_view != expected_view:
            mismatches.append((case_id, expected_view, actual_view))
    assert not mismatches, f"{len(mismatches)} cases differ from the recount: {mismatches[:3]}"

    alerts = [
        alert
        for alert in stack.all_alerts(hospital_id=run.hospital_id)
        if alert["case_id"] not in run.probe_cases
    ]
    assert len({alert["alert_id"] for alert in alerts}) == len(alerts), "an alert is doubled"
    # the recount knows the level and forecast alerts; a stack run with monitoring rules
    # also raises rule findings, whose ids must not double (above) but are not recounted
    alerts = [alert for alert in alerts if alert["kind"] != "rule"]
    actual_alerts = Counter(
        (
            alert["case_id"],
            alert["previous_level"],
            alert["level"],
            alert["transition"],
            Decimal(alert["total_cost"]),
            Decimal(alert["standard_cost"]),
            alert["event_id"],
        )
        for alert in alerts
    )
    wanted_alerts = Counter(
        (
            a.case_id,
            a.previous_level,
            a.level,
            a.transition,
            a.total_cost,
            a.standard_cost,
            a.event_id,
        )
        for a in expected_alerts
    )
    missing = wanted_alerts - actual_alerts
    extra = actual_alerts - wanted_alerts
    assert not missing and not extra, (
        f"alerts differ from the recount: {sum(missing.values())} missing, e.g."
        f" {list(missing)[:3]}; {sum(extra.values())} unexpected, e.g. {list(extra)[:3]}"
    )

    if stream is not None:
        wanted = {alert["alert_id"] for alert in alerts}
        try:
            stack.wait_for(lambda: wanted <= set(stream.received), timeout=60, interval=0.25)
        finally:
            stream.stop()
        pushed = [alert_id for alert_id in stream.received if alert_id in wanted]
        assert len(pushed) == len(set(pushed)), "the live stream pushed an alert twice"
        run.figures["live alert stream"] = (
            f"{len(pushed)} alerts pushed, each exactly once, across"
            f" {stream.reconnects} reconnects with Last-Event-ID"
        )

    stats = driver.stats
    assert not stats.anomalies, f"answers that contradict the workload: {stats.anomalies[:5]}"
    assert stats.unavailable_without_retry_after == 0, "a 503 came without Retry-After"
    server_errors = {
        s: n for s, n in stats.statuses.items() if s.isdigit() and s not in ("202", "422", "503")
    }
    assert not server_errors, f"unexpected answers: {server_errors}"
    _no_free_text_in_logs(stack.workdir, run.workload)

    postings = run.workload.postings
    posting_seconds = driver.finished_at - driver.started_at
    run.figures = {
        "events posted": f"{len(postings):,} ({run.workload.distinct_valid_events:,} distinct"
        f" valid, {sum(p.duplicate for p in postings)} exact duplicates,"
        f" {sum(not p.valid for p in postings)} invalid) over {len(expected_cases)} cases",
        "requests": f"{stats.requests:,} ({stats.retries} retried; answers"
        f" {dict(sorted(stats.statuses.items()))})",
        "items answered": dict(sorted(stats.item_statuses.items())),
        "posting": f"{posting_seconds:.1f} s ({len(postings) / posting_seconds:,.0f} events/s)",
        **run.figures,
        "caught up after last post": f"{catch_up:.1f} s",
        "result": f"{len(expected_cases)} cases equal the recount to the cent;"
        f" {len(alerts)} alerts, none missing, none doubled",
    }
    report(title, run.figures)


def _no_free_text_in_logs(workdir: Path, workload: Workload) -> None:
    """Logs name events by ids only: no item name (free text) may appear in them."""
    names = {
        posting.event["item_name"] for posting in workload.postings if "item_name" in posting.event
    }
    for log_file in workdir.glob("*.log"):
        text = log_file.read_text(errors="replace")
        leaked = [name for name in names if name in text]
        assert not leaked, f"{log_file.name} contains free text such as {leaked[:3]}"


def test_worker_sigkilled_three_times_at_random_moments(stack: Stack) -> None:
    run = prepare(stack, seed=301)
    rng = random.Random(301)
    moments = sorted(rng.uniform(0.1, 0.8) for _ in range(3))
    run.driver.start()
    kills = []
    for share in moments:
        run.driver.wait_for_progress(share)
        at = run.driver.progress
        killed = time.monotonic()
        stack.kill(stack.workers[-1])
        time.sleep(rng.uniform(0.0, 1.5))
        stack.start_worker()
        restarted = time.monotonic() - killed
        visible = probe(run)
        kills.append(
            f"at {at:.0%} posted: restarted after {restarted:.1f} s, fresh events visible"
            f" on every partition {restarted + visible:.1f} s after the kill"
        )
    run.figures = {f"worker SIGKILL {n}": text for n, text in enumerate(kills, start=1)}
    finish(run, "1. Faust worker SIGKILLed three times at random moments, restarted")


def test_two_workers_share_partitions_one_is_killed_the_other_takes_over(stack: Stack) -> None:
    first = stack.workers[0]
    second = stack.start_worker()
    started = time.monotonic()
    stack.wait_for(
        lambda: len(stack.heartbeats()) == 2 and all(stack.heartbeats().values()), timeout=120
    )
    shared = time.monotonic() - started
    held_before = stack.heartbeats()
    run = prepare(stack, seed=302)
    rng = random.Random(302)
    run.driver.start()
    run.driver.wait_for_progress(rng.uniform(0.2, 0.4))
    at = run.driver.progress
    killed = time.monotonic()
    stack.kill(first)
    stack.wait_for(lambda: set(stack.heartbeats()) == {second.pid}, timeout=120, interval=0.25)
    probe(run)
    takeover_visible = time.monotonic() - killed
    run.driver.wait_for_progress(rng.uniform(0.6, 0.8))
    returned_at = run.driver.progress
    comeback = time.monotonic()
    third = stack.start_worker()
    stack.wait_for(
        lambda: (
            set(stack.heartbeats()) == {second.pid, third.pid} and all(stack.heartbeats().values())
        ),
        timeout=120,
        interval=0.25,
    )
    rejoined = time.monotonic() - comeback
    visible_again = probe(run)
    assert second.poll() is None, "the surviving worker died"
    run.figures = {
        "two workers": f"partitions shared after {shared:.1f} s: {sorted(held_before.values())}",
        "worker SIGKILL": f"at {at:.0%} posted; the survivor held every partition and fresh"
        f" events were visible on all {stack.partitions} of them {takeover_visible:.1f} s"
        " after the kill",
        "worker returns": f"at {returned_at:.0%} posted; partitions shared again after"
        f" {rejoined:.1f} s, fresh events visible {visible_again:.1f} s later",
    }
    finish(run, "2. two workers share the partitions; one SIGKILLed, the other takes over")


def test_api_sigkilled_twice_while_events_are_posted(stack: Stack) -> None:
    run = prepare(stack, seed=303)
    rng = random.Random(303)
    stream = AlertStreamReader(stack.url, run.hospital_id)
    stream.start()
    run.driver.start()
    kills = []
    for share in sorted(rng.uniform(0.15, 0.8) for _ in range(2)):
        run.driver.wait_for_progress(share)
        at = run.driver.progress
        killed = time.monotonic()
        stack.kill(stack.api)
        time.sleep(1.0)
        stack.start_api()
        ready = stack.wait_ready()
        restarted = time.monotonic()

        def answered_again(since: float = killed, after: float = restarted) -> bool:
            # the listening socket outlives the API process: a request sent while it was
            # down waits in the listen queue and is answered by the new one; only those
            # in flight at the kill fail and are retried
            stats = run.driver.stats
            first_failure, recovered = stats.outage_after(since)
            answered = any(t > after for t in list(stats.successes))
            return answered and (first_failure is None or recovered is not None)

        stack.wait_for(answered_again, timeout=60)
        first_failure, recovered = run.driver.stats.outage_after(killed)
        if first_failure is None or recovered is None:
            kills.append(
                f"at {at:.0%} posted: API ready again {ready + 1.0:.1f} s after the kill;"
                " no request was in flight at the kill, those sent meanwhile waited in the"
                " listen queue and were answered"
            )
            continue
        kills.append(
            f"at {at:.0%} posted: API ready again {ready + 1.0:.1f} s after the kill;"
            f" clients went unanswered for {recovered - first_failure:.1f} s, then their"
            " retries were answered"
        )
    run.figures = {f"API SIGKILL {n}": text for n, text in enumerate(kills, start=1)}
    finish(run, "3. API process SIGKILLed twice while events are posted, restarted", stream)


def test_broker_sigkilled_and_the_stack_restarted(stack: Stack) -> None:
    run = prepare(stack, seed=304)
    rng = random.Random(304)
    run.driver.start()
    run.driver.wait_for_progress(rng.uniform(0.3, 0.6))
    at = run.driver.progress
    killed = time.monotonic()
    stack.kill(stack.broker)
    answered_before = len(run.driver.stats.successes)
    time.sleep(3.0)  # the API keeps accepting durably while the broker is gone
    accepted_without_broker = len(run.driver.stats.successes) - answered_before
    stack.kill(stack.api)
    for worker in stack.workers:
        stack.kill(worker)
    restarted = time.monotonic()
    replayed = stack.start_broker(replay=True)
    worker = stack.start_worker()
    stack.start_api()
    stack.wait_ready()
    stack.wait_for(lambda: worker.pid in stack.heartbeats(), timeout=120, interval=0.25)
    ready = time.monotonic() - restarted
    probe(run)
    run.figures = {
        "broker SIGKILL": f"at {at:.0%} posted; {accepted_without_broker} batches answered 202"
        " in the 3 s without a broker (ledgered, relayed later)",
        "stack restart": f"{replayed:,} ledgered events replayed into the new broker; ready"
        f" {ready:.1f} s after the restart began ({time.monotonic() - restarted:.1f} s until"
        f" fresh events were visible, {time.monotonic() - killed:.1f} s after the kill)",
    }
    finish(run, "4. embedded broker SIGKILLed (all its data gone), stack restarted")


def test_database_unavailable_for_a_while(stack: Stack) -> None:
    run = prepare(stack, seed=305)
    rng = random.Random(305)
    outage = 8.0
    stream = AlertStreamReader(stack.url, run.hospital_id)
    stream.start()
    run.driver.start()
    run.driver.wait_for_progress(rng.uniform(0.3, 0.6))
    at = run.driver.progress
    refused_before = run.driver.stats.statuses["503"]
    went_down = time.monotonic()
    stack.set_database_available(False)
    time.sleep(outage)
    stack.set_database_available(True)
    came_back = time.monotonic()
    successes = run.driver.stats.successes
    stack.wait_for(lambda: any(t > came_back for t in successes[-100:]), timeout=60)
    first_answer = min(t for t in successes[-100:] if t > came_back) - came_back
    refused = run.driver.stats.statuses["503"] - refused_before
    visible = probe(run)
    assert refused > 0, "no request met the outage"
    assert stack.api is not None and stack.api.poll() is None, "the API died"
    assert all(worker.poll() is None for worker in stack.workers), "the worker died"
    run.figures = {
        "database outage": f"at {at:.0%} posted, {outage:.0f} s of refused connections"
        f" ({came_back - went_down:.1f} s measured)",
        "ingest during the outage": f"{refused} answers 503 with Retry-After; nothing lost",
        "recovery": f"first 202 {first_answer:.1f} s after the database came back; fresh"
        f" events visible {visible:.1f} s after that probe was posted",
    }
    finish(run, "5. PostgreSQL refuses connections for a while", stream)
