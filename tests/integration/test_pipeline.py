"""The real pipeline: HTTP ingest -> tansu -> Faust worker -> PostgreSQL -> HTTP query."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.wire import CASE_SEQUENCE_HEADER, NOT_FROM_LEDGER, EventSeal
from tests.integration.harness import TARGET_WATCH, Stack, running_stack

pytestmark = pytest.mark.integration
FM15_EMPLOYEE = Decimal("40400.83")  # 3.2973 x 12252.70, the sample catalogue


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), postgres_url, TARGET_WATCH) as running:
        yield running


def ids() -> tuple[str, str]:
    return f"H{uuid.uuid4().hex[:6]}", "C1"


def admitted(
    h: str,
    c: str,
    n: str,
    *,
    drg: str | None = "FM15",
    at: str = "2026-11-20T08:00:00+08:00",
    scheme: str = "employee",
    department: str = "CARDIO",
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": n,
        "type": "admitted",
        "hospital_id": h,
        "case_id": c,
        "occurred_at": at,
        "department": department,
        "insurance_scheme": scheme,
        "admitted_at": at,
    }
    if drg:
        event["drg_code"] = drg
    return event


def line(
    h: str,
    c: str,
    n: str,
    amount: str,
    *,
    kind: str = "charge",
    item: str = "STENT",
    category: str = "consumable",
    at: str = "2026-11-20T10:00:00+08:00",
) -> dict[str, Any]:
    return {
        "event_id": n,
        "type": kind,
        "hospital_id": h,
        "case_id": c,
        "occurred_at": at,
        "department": "CARDIO",
        "item_code": item,
        "item_name": f"item {item}",
        "category": category,
        "quantity": "1",
        "unit_price": amount,
        "amount": amount,
    }


def of_standard(fraction: str) -> str:
    return str((FM15_EMPLOYEE * Decimal(fraction)).quantize(Decimal("0.01")))


def test_case_state_is_visible_within_a_second(stack: Stack) -> None:
    delays = []
    for _attempt in range(5):
        h, c = ids()
        stack.post([admitted(h, c, "a"), line(h, c, "b", "1234.56")])
        accepted = time.monotonic()
        stack.wait_for(
            lambda h=h, c=c: (stack.case(h, c) or {}).get("total_cost") == "1234.56",
            30,
            interval=0.02,
        )
        delays.append(time.monotonic() - accepted)
    median = statistics.median(delays)
    print(f"\n202 -> case visible: median {median * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")
    assert median < 1.0


def test_levels_escalate_de_escalate_and_resolve_once_each(stack: Stack) -> None:
    h, c = ids()
    stack.post([admitted(h, c, "a")])
    stack.post([line(h, c, "c1", of_standard("0.91"), item="STENT")])  # blue
    stack.post([line(h, c, "c2", of_standard("0.05"), item="PCI", category="procedure")])  # yellow
    stack.post([line(h, c, "c3", of_standard("0.05"), item="ICU", category="bed")])  # red
    stack.post([line(h, c, "c3", of_standard("0.05"), item="ICU", category="bed")])  # duplicate
    stack.post([line(h, c, "r1", of_standard("0.05"), item="ICU", category="bed", kind="credit")])
    stack.post([line(h, c, "r2", of_standard("0.91"), item="STENT", kind="credit")])  # none
    stack.wait_for(lambda: len(stack.all_alerts(hospital_id=h)) >= 5)
    time.sleep(0.5)
    alerts = stack.alerts_in_order(hospital_id=h)
    assert [(a["previous_level"], a["level"], a["transition"]) for a in alerts] == [
        ("none", "blue", "escalated"),
        ("blue", "yellow", "escalated"),
        ("yellow", "red", "escalated"),
        ("red", "yellow", "de-escalated"),
        ("yellow", "none", "resolved"),
    ]
    red = alerts[2]
    assert red["event_id"] == "c3"
    assert red["standard_cost"] == str(FM15_EMPLOYEE)
    assert red["top_contributors"][0]["item_code"] == "STENT"
    case = stack.case(h, c)
    assert case is not None
    expected_total = Decimal(of_standard("0.05"))
    assert case["total_cost"] == str(expected_total)
    assert case["level"] == "none" and case["events_applied"] == 6


def test_duplicate_past_ingest_is_not_counted_twice(stack: Stack) -> None:
    h, c = ids()
    charge = line(h, c, "dup-1", "500.00")
    stack.post([admitted(h, c, "a"), charge])

    # as a relay sending it again would: sealed with the ledger's key
    key, value = f"{h}/{c}".encode(), orjson.dumps(charge)
    headers = stack.seal().headers(key, value, None)

    async def resend() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.broker_port}")
        await producer.start()
        try:
            for _ in range(3):
                await producer.send_and_wait(
                    stack.settings.events_topic, value, key=key, headers=headers
                )
        finally:
            await producer.stop()

    asyncio.run(resend())
    stack.post([line(h, c, "marker", "1.00", item="LAB", category="lab")])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("events_applied") == 3)
    case = stack.case(h, c)
    assert case is not None and case["total_cost"] == "501.00"


def test_unprocessable_message_is_kept_as_a_dead_letter(stack: Stack) -> None:
    h = f"H{uuid.uuid4().hex[:6]}"

    # sealed, as if the ledger had published them: the worker decodes them and refuses them
    seal = stack.seal()

    async def send_garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.broker_port}")
        await producer.start()
        try:
            bad = {"event_id": "x1", "type": "charge", "hospital_id": h, "case_id": "C1"}
            for value in (orjson.dumps(bad), b"\xff not json"):
                await producer.send_and_wait(
                    stack.settings.events_topic,
                    value,
                    key=b"k",
                    headers=seal.headers(b"k", value, None),
                )
        finally:
            await producer.stop()

    asyncio.run(send_garbage())

    def listed() -> list[dict[str, Any]]:
        page = httpx.get(f"{stack.url}/v1/dead-letters", params={"stage": "stream", "limit": 500})
        return [
            item
            for item in page.json()["items"]
            if h in item["payload"] or "not JSON" in item["reason"]
        ]

    stack.wait_for(lambda: len(listed()) >= 2)
    reasons = " ".join(item["reason"] for item in listed())
    assert "occurred_at" in reasons and "not JSON" in reasons


def stream_dead_letters(stack: Stack, hospital_id: str) -> list[dict[str, Any]]:
    page = httpx.get(f"{stack.url}/v1/dead-letters", params={"stage": "stream", "limit": 500})
    return [item for item in page.json()["items"] if hospital_id in item["payload"]]


def test_a_record_produced_straight_into_the_events_topic_is_refused(stack: Stack) -> None:
    """The events topic is internal: a raw producer's record, keyed as ingest keys it and
    with a ledger number, or with a seal of its own making, changes no case; it is kept
    as a dead letter saying where to produce; events posted through the API still apply."""
    h, c = ids()
    stack.post([admitted(h, c, "a"), line(h, c, "b", "100.00")])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("total_cost") == "100.00")
    straight = line(h, c, "straight", of_standard("0.95"))
    forged = line(h, c, "forged", of_standard("0.95"))

    async def produce_straight() -> None:
        key = f"{h}/{c}".encode()
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.broker_port}")
        await producer.start()
        try:
            await producer.send_and_wait(
                stack.settings.events_topic,
                orjson.dumps(straight),
                key=key,
                headers=[(CASE_SEQUENCE_HEADER, b"3")],
            )
            value = orjson.dumps(forged)
            await producer.send_and_wait(
                stack.settings.events_topic,
                value,
                key=key,
                headers=EventSeal(b"\x05" * 32).headers(key, value, 4),
            )
        finally:
            await producer.stop()

    asyncio.run(produce_straight())
    stack.wait_for(lambda: len(stream_dead_letters(stack, h)) >= 2)
    letters = stream_dead_letters(stack, h)
    assert {orjson.loads(item["payload"])["event_id"] for item in letters} == {
        "straight",
        "forged",
    }
    assert {item["reason"] for item in letters} == {NOT_FROM_LEDGER}
    assert "intake topic" in NOT_FROM_LEDGER
    # through the API, the next events apply, the case's total holds none of the refused
    stack.post([line(h, c, "after", "1.00", item="LAB", category="lab")])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("events_applied") == 3)
    time.sleep(0.5)
    case = stack.case(h, c)
    assert case is not None and case["total_cost"] == "101.00" and case["level"] == "none"
    assert stack.all_alerts(hospital_id=h) == []
    # the same event posted through the API counts (the refusal kept nothing of it)
    stack.post([straight])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("events_applied") == 4)
    assert (stack.case(h, c) or {})["total_cost"] == str(
        Decimal("101.00") + Decimal(straight["amount"])
    )


def test_charge_before_admission_and_unknown_drg(stack: Stack) -> None:
    h, c = ids()
    stack.post([line(h, c, "early", "800.00")])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("level") == "unpriced")
    stack.post([admitted(h, c, "late-admit", drg=None)])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("events_applied") == 2)
    assert (stack.case(h, c) or {})["level"] == "unpriced"
    stack.post(
        [
            {
                "event_id": "g1",
                "type": "drg_assigned",
                "hospital_id": h,
                "case_id": c,
                "occurred_at": "2026-11-20T12:00:00+08:00",
                "drg_code": "FM15",
            }
        ]
    )
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("standard_cost") == str(FM15_EMPLOYEE))
    case = stack.case(h, c)
    assert case is not None and case["total_cost"] == "800.00" and case["level"] == "none"
    assert case["drg_name"] and case["avg_los_days"] == "7.5"


def test_regroup_reprices_and_discharge_flags(stack: Stack) -> None:
    h, c = ids()
    stack.post([admitted(h, c, "a"), line(h, c, "b", of_standard("0.99"))])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("level") == "yellow")
    cheap = httpx.get(f"{stack.url}/v1/drg-catalogues/current/groups/ES35").json()
    stack.post(
        [
            {
                "event_id": "g",
                "type": "drg_assigned",
                "hospital_id": h,
                "case_id": c,
                "occurred_at": "2026-11-20T12:00:00+08:00",
                "drg_code": "ES35",
            }
        ]
    )
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("drg_code") == "ES35")
    case = stack.case(h, c)
    assert case is not None
    assert case["standard_cost"] == cheap["standard_costs"]["employee"]
    assert case["level"] == "red"
    stack.post(
        [
            {
                "event_id": "d",
                "type": "discharged",
                "hospital_id": h,
                "case_id": c,
                "occurred_at": "2026-11-22T12:00:00+08:00",
                "discharged_at": "2026-11-22T12:00:00+08:00",
            }
        ]
    )
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("status") == "discharged")
    case = stack.case(h, c)
    assert case is not None and case["los_days"] == 2
    expected_flag = (
        "high" if Decimal(case["total_cost"]) > 2 * Decimal(case["standard_cost"]) else None
    )
    assert case["ratio_flag"] == expected_flag
    alerts = stack.all_alerts(hospital_id=h)
    assert {a["level"] for a in alerts} == {"yellow", "red"}


def test_new_catalogue_and_thresholds_reprice_open_cases(stack: Stack) -> None:
    h, c = ids()
    stack.post([admitted(h, c, "a", drg="QX99"), line(h, c, "b", "950.00")])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("events_applied") == 2)
    assert (stack.case(h, c) or {})["level"] == "unpriced"
    response = httpx.post(
        f"{stack.url}/v1/drg-catalogues",
        json={
            "name": f"local {h}",
            "effective_from": "2026-01-01",
            "hospital_id": h,
            "base_rates": {"employee": "1000.00"},
            "groups": [{"drg_code": "QX99", "name": "Local test group", "weight": "1.0000"}],
        },
    )
    assert response.status_code == 201, response.text
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("level") == "yellow", timeout=20)
    response = httpx.put(
        f"{stack.url}/v1/alert-thresholds",
        json={
            "hospital_id": h,
            "drg_code": "QX99",
            "blue": "0.50",
            "yellow": "0.80",
            "red": "0.90",
        },
    )
    assert response.status_code == 200, response.text
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("level") == "red", timeout=20)
    levels = [a["level"] for a in stack.alerts_in_order(hospital_id=h)]
    assert levels == ["yellow", "red"]


def _read_alert_events(response: httpx.Response, wanted: int) -> list[tuple[int, dict[str, Any]]]:
    """Read `id:`/`data:` pairs from a server-sent-event stream until `wanted` arrived."""
    received: list[tuple[int, dict[str, Any]]] = []
    event_id: int | None = None
    for text in response.iter_lines():
        if text.startswith("id: "):
            event_id = int(text[4:])
        elif text.startswith("data: ") and event_id is not None:
            received.append((event_id, orjson.loads(text[6:])))
            if len(received) >= wanted:
                break
    return received


def test_live_stream_pushes_alerts_and_resumes_from_last_event_id(stack: Stack) -> None:
    h, c = ids()
    stack.post([admitted(h, c, "a")])
    params = {"hospital_id": h}
    with httpx.stream("GET", f"{stack.url}/v1/alerts/stream", params=params, timeout=30) as live:
        assert live.headers["content-type"].startswith("text/event-stream")
        posted = time.monotonic()
        stack.post([line(h, c, "blue", of_standard("0.91"))])
        first = _read_alert_events(live, 1)
        delay = time.monotonic() - posted
    print(f"\n202 -> alert on the live stream: {delay * 1000:.0f} ms")
    assert [alert["level"] for _, alert in first] == ["blue"]
    assert delay < 5
    last_id = first[0][0]
    # while disconnected, the case goes red; a resumed client gets exactly what it missed
    stack.post([line(h, c, "red", of_standard("0.20"), item="ICU", category="bed")])
    stack.wait_for(lambda: len(stack.all_alerts(hospital_id=h)) == 2)
    headers = {"Last-Event-ID": str(last_id)}
    with httpx.stream(
        "GET", f"{stack.url}/v1/alerts/stream", params=params, headers=headers, timeout=30
    ) as resumed:
        missed = _read_alert_events(resumed, 1)
    assert [(alert["previous_level"], alert["level"]) for _, alert in missed] == [("blue", "red")]
    assert missed[0][0] > last_id


def test_worker_sigkill_resumes_from_changelog(stack: Stack, tmp_path: Path) -> None:
    """SIGKILL the worker while it is busy, three times; every charge counts exactly once."""
    h = f"H{uuid.uuid4().hex[:6]}"
    cases = [f"C{n}" for n in range(20)]
    expected: dict[str, Decimal] = {}
    serial = 0
    per_round = 30  # charges per case per round
    kills = []
    for round_number in range(3):
        batch: list[dict[str, Any]] = []
        for c in cases:
            if round_number == 0:
                batch.append(admitted(h, c, f"{c}-a"))
            for _ in range(per_round):
                serial += 1
                amount = Decimal(serial % 997) + Decimal("0.37")
                batch.append(line(h, c, f"e{serial}", str(amount)))
                expected[c] = expected.get(c, Decimal(0)) + amount
        applied_before = sum((stack.case(h, c) or {}).get("events_applied", 0) for c in cases)
        posting = threading.Thread(
            target=lambda batch=batch: [
                stack.post(batch[start : start + 50]) for start in range(0, len(batch), 50)
            ]
        )
        posting.start()

        def busy(before: int = applied_before) -> bool:
            # the projection has moved: the worker is in the middle of this round
            now = sum((stack.case(h, c) or {}).get("events_applied", 0) for c in cases)
            return now > before

        stack.wait_for(busy, timeout=60, interval=0.05)
        stack.kill(stack.workers[-1])
        posting.join(60)
        kills.append(sum((stack.case(h, c) or {}).get("events_applied", 0) for c in cases))
        stack.start_worker()
    recovery = stack.wait_ready()
    print(f"\nkilled while busy at {kills} events applied; ready again in {recovery:.1f}s")

    def reconciled() -> bool:
        return all((stack.case(h, c) or {}).get("total_cost") == str(expected[c]) for c in cases)

    try:
        stack.wait_for(reconciled, timeout=90, interval=0.5)
    except AssertionError:
        actual = {
            c: ((stack.case(h, c) or {}).get("total_cost"), str(expected[c]))
            for c in cases
            if (stack.case(h, c) or {}).get("total_cost") != str(expected[c])
        }
        applied = {c: (stack.case(h, c) or {}).get("events_applied") for c in actual}
        history = {c: stack.changelog_history(h, c)[-6:] for c in actual}
        raise AssertionError(
            f"(got, expected): {actual}; events applied {applied}; kills at {kills};"
            f" latest changelog states {history}"
        ) from None
    for c in cases:
        case = stack.case(h, c)
        assert case is not None and case["events_applied"] == 1 + 3 * per_round
    alerts = stack.all_alerts(hospital_id=h)
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    per_case: dict[str, list[str]] = {}
    for alert in reversed(alerts):  # oldest first
        per_case.setdefault(alert["case_id"], []).append(alert["level"])
    for levels in per_case.values():
        assert all(a != b for a, b in zip(levels, levels[1:], strict=False))


def test_events_delivered_out_of_ledger_order_are_applied_in_ledger_order(stack: Stack) -> None:
    """As a relay or a replay can deliver them: the alerts still follow the ledger order."""
    h, c = ids()
    events = [
        (1, admitted(h, c, "a")),
        (2, line(h, c, "yellow", of_standard("0.96"))),
        (3, line(h, c, "red", of_standard("0.05"), item="ICU", category="bed")),
    ]

    seal = stack.seal()

    async def deliver(order: list[int]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.broker_port}")
        await producer.start()
        try:
            for sequence in order:
                key, value = f"{h}/{c}".encode(), orjson.dumps(events[sequence - 1][1])
                await producer.send_and_wait(
                    stack.settings.events_topic,
                    value,
                    key=key,
                    headers=seal.headers(key, value, sequence),
                )
        finally:
            await producer.stop()

    asyncio.run(deliver([1, 3]))  # the third arrives before the second
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("events_applied") == 1)
    time.sleep(1.0)
    assert (stack.case(h, c) or {})["total_cost"] == "0.00"  # the third waits for the second
    asyncio.run(deliver([2, 3]))  # the gap is filled; the third comes again (redelivery)
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("events_applied") == 3)
    stack.wait_for(lambda: len(stack.all_alerts(hospital_id=h)) >= 2)
    alerts = list(reversed(stack.all_alerts(hospital_id=h)))  # history is newest first
    # in arrival order it would have been one alert, straight to red, raised by "yellow"
    assert [(a["level"], a["event_id"]) for a in alerts] == [("yellow", "yellow"), ("red", "red")]


def test_the_worker_commits_what_it_applied(stack: Stack) -> None:
    # Events reach the worker a batch at a time outside Faust's acknowledgements; their
    # offsets must still be committed, or every restart would re-read the whole topic.
    h = f"H{uuid.uuid4().hex[:6]}"
    cases = [f"C{n}" for n in range(40)]  # spread over every partition
    for c in cases:  # one request each: one produce batch each, so tansu's ends are exact
        stack.post([admitted(h, c, f"{c}-a")])
    stack.wait_for(lambda: all(stack.case(h, c) for c in cases), timeout=30)

    async def lag() -> dict[int, int]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        # a consumer of the worker's group that never joins it: it only reads offsets
        reader = AIOKafkaConsumer(
            bootstrap_servers=f"127.0.0.1:{stack.broker_port}",
            group_id=stack.settings.worker_app_id,
            enable_auto_commit=False,
        )
        await reader.start()
        try:
            tps = [TopicPartition(stack.settings.events_topic, p) for p in range(stack.partitions)]
            ends = await reader.end_offsets(tps)
            return {tp.partition: ends[tp] - ((await reader.committed(tp)) or 0) for tp in tps}
        finally:
            await reader.stop()

    stack.wait_for(lambda: not any(asyncio.run(lag()).values()), 20, 0.5)
    assert asyncio.run(lag()) == dict.fromkeys(range(stack.partitions), 0)


def read_stream(url: str, hospital_id: str, found: list[dict[str, Any]]) -> None:
    """The live stream of a hospital's alerts until a department alert arrives."""
    with httpx.stream(
        "GET",
        f"{url}/v1/alerts/stream",
        params={"hospital_id": hospital_id},
        timeout=httpx.Timeout(10, read=60),
    ) as response:
        for text in response.iter_lines():
            if text.startswith("data: "):
                found.append(orjson.loads(text[6:]))
                if found[-1]["kind"] == "target":
                    return


def test_a_department_over_its_cost_per_case_target_is_alerted_live(stack: Stack) -> None:
    h, c = ids()
    streamed: list[dict[str, Any]] = []
    reader = threading.Thread(target=read_stream, args=(stack.url, h, streamed), daemon=True)
    reader.start()
    time.sleep(0.5)  # the stream is open
    for _attempt in range(2):
        # a case discharged now, in the hospitals' zone: the period is today's month
        now = datetime.now(ZoneInfo("Asia/Shanghai"))
        at = now.isoformat(timespec="seconds")
        stack.post(
            [
                admitted(h, c, f"{c}-a", at=at),
                line(h, c, f"{c}-b", "30000.00", at=at),
                {
                    "event_id": f"{c}-d",
                    "type": "discharged",
                    "hospital_id": h,
                    "case_id": c,
                    "occurred_at": at,
                    "discharged_at": at,
                },
            ]
        )
        stack.wait_for(lambda c=c: (stack.case(h, c) or {}).get("status") == "discharged")
        # the month's cost per case may be 15,000.00: the case alone costs twice that
        target = httpx.put(
            f"{stack.url}/v1/hospitals/{h}/targets/CARDIO/{now:%Y-%m}",
            json={"cost_per_case": "15000.00"},
            timeout=10,
        )
        assert target.status_code == 200, target.text
        try:
            stack.wait_for(lambda: any(a["kind"] == "target" for a in streamed), 15)
            break
        except AssertionError:
            if datetime.now(ZoneInfo("Asia/Shanghai")).date() == now.date():
                raise
        c = f"{c}x"  # the local day turned during the attempt: once more on the new one
    reader.join(timeout=5)
    [alert] = [a for a in streamed if a["kind"] == "target"]
    assert alert == alert | {
        "hospital_id": h,
        "case_id": "",
        "department": "CARDIO",
        "level": "red",
        "previous_level": "none",
        "transition": "escalated",
        "total_cost": "30000.00",
        "standard_cost": "15000.00",
        "ratio": "2.0000",
        "target_measure": "cost_per_case",
        "target_period": f"{now:%Y-%m}",
    }
    assert [a["alert_id"] for a in stack.all_alerts(hospital_id=h, kind="target")] == [
        alert["alert_id"]
    ]
