"""The Kafka intake on the real stack: tansu, the intake process, the worker, PostgreSQL.

Files go in with `drgwatch feed` (kafka-python, as a hospital's script would send);
what the intake answered is read back from the results topic, what it refused from the
dead letters, and what it recorded from the ledger and the cases' API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from services.ingest.intake.files import CSV_COLUMNS
from tests.integration.harness import Stack, running_stack

pytestmark = pytest.mark.integration
FM15_EMPLOYEE = Decimal("40400.83")  # 3.2973 x 12252.70, the sample catalogue
# the intake takes these hospitals' events only; each test uses its own
HOSPITALS = [f"H{uuid.uuid4().hex[:6]}" for _ in range(9)]  # one per test: they share a stack
OUTSIDER = f"X{uuid.uuid4().hex[:6]}"
DAY = "2026-11-20"


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = {
        "DRGWATCH_INTAKE_HOSPITALS": ",".join(HOSPITALS),
        # small batches: many transactions and offset commits to crash between
        "DRGWATCH_INTAKE_BATCH_RECORDS": "40",
        "DRGWATCH_INTAKE_TRANSACTION_EVENTS": "30",
    }
    with running_stack(tmp_path_factory.mktemp("intake"), postgres_url, settings) as running:
        running.start_intake()
        yield running


def admitted(h: str, c: str, *, drg: str = "FM15") -> dict[str, Any]:
    at = f"{DAY}T08:00:00+08:00"
    return {
        "event_id": f"{c}-adm",
        "type": "admitted",
        "hospital_id": h,
        "case_id": c,
        "occurred_at": at,
        "department": "CARDIO",
        "insurance_scheme": "employee",
        "drg_code": drg,
        "admitted_at": at,
    }


def charge(h: str, c: str, n: int, amount: str, *, quantity: str = "1") -> dict[str, Any]:
    unit = Decimal(amount) / Decimal(quantity)
    return {
        "event_id": f"{c}-chg-{n}",
        "type": "charge",
        "hospital_id": h,
        "case_id": c,
        "occurred_at": f"{DAY}T09:{n % 60:02d}:00+08:00",
        "department": "CARDIO",
        "item_code": f"ITEM{n % 7}",
        "item_name": "Item",
        "category": "consumable",
        "quantity": quantity,
        "unit_price": f"{unit:.2f}",
        "amount": amount,
    }


def ndjson(path: Path, events: list[dict[str, Any]], extra_lines: Sequence[str] = ()) -> Path:
    lines = [orjson.dumps(event).decode() for event in events] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def feed(
    stack: Stack, path: Path, *options: str, wait: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "feed", str(path), *options],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=wait + 60,
        check=False,
    )


def start_feed(stack: Stack, path: Path, output: Path) -> subprocess.Popen[bytes]:
    with open(output, "wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "feed", str(path), "--wait", "120"],
            env=stack.env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def query(stack: Stack, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        dsn = stack.database_url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def ledger_counts(stack: Stack, hospital_id: str) -> tuple[int, int]:
    """(ledger rows, distinct event ids) of a hospital."""
    [row] = query(
        stack,
        "SELECT count(*) AS total, count(DISTINCT event_id) AS distinct_ids"
        " FROM ingest_ledger WHERE hospital_id = $1",
        hospital_id,
    )
    return int(row["total"]), int(row["distinct_ids"])


def wait_total(stack: Stack, h: str, c: str, total: Decimal, timeout: float = 60) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(stack.case(h, c) or {})
        return bool(found) and Decimal(found["total_cost"]) == total

    stack.wait_for(reached, timeout=timeout, interval=0.25)
    return found


def test_an_ndjson_file_moves_its_case_to_red_and_sent_again_is_all_duplicates(
    stack: Stack, tmp_path: Path
) -> None:
    h, c = HOSPITALS[0], "N1"
    events = [admitted(h, c)] + [charge(h, c, n, "15000.00") for n in range(3)]
    path = ndjson(tmp_path / "day.ndjson", events)
    first = feed(stack, path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "accepted 4, duplicate 0, refused 0" in first.stdout, first.stdout
    case = wait_total(stack, h, c, Decimal("45000.00"))
    assert case["level"] == "red" and Decimal(case["standard_cost"]) == FM15_EMPLOYEE
    stack.wait_for(lambda: stack.all_alerts(hospital_id=h, case_id=c, level="red"), timeout=30)

    again = feed(stack, path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "accepted 0, duplicate 4, refused 0" in again.stdout, again.stdout
    assert ledger_counts(stack, h) == (4, 4)
    assert len(stack.all_alerts(hospital_id=h, case_id=c, level="red")) == 1


def test_a_csv_file_is_taken_by_its_contract_columns(stack: Stack, tmp_path: Path) -> None:
    h, c = HOSPITALS[1], "S1"
    events = [admitted(h, c), charge(h, c, 1, "30000.00", quantity="2"), charge(h, c, 2, "8000.50")]
    rows = [",".join(CSV_COLUMNS)]
    rows += [",".join(str(event.get(name, "")) for name in CSV_COLUMNS) for event in events]
    path = tmp_path / "day.csv"
    path.write_text("\n".join(rows) + "\n")
    result = feed(stack, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted 3, duplicate 0, refused 0" in result.stdout, result.stdout
    case = wait_total(stack, h, c, Decimal("38000.50"))
    # 38000.50 / 40400.83 = 0.94: blue (>= 90%, < 95%)
    assert case["level"] == "blue"
    stack.wait_for(lambda: stack.all_alerts(hospital_id=h, case_id=c, level="blue"), timeout=30)


def test_an_hl7_batch_file_is_mapped_by_the_facility_profiles(stack: Stack, tmp_path: Path) -> None:
    h, c = HOSPITALS[2], "V-HL7"
    msh = r"MSH|^~\&|HIS|{h}|DRGWATCH|DRGWATCH|20261120090000||{kind}|{id}|P|2.5"
    pv1 = f"PV1|1|I|W3|||||||CARDIO|||||||||{c}|employee" + "|" * 24 + "20261120080000"
    ft1 = "FT1|1|{id}-1||20261120090000||CG|HC01^Stent^CONS|||1|{amount}|{amount}|CARDIO"
    messages = [
        "\r".join(
            [msh.format(h=h, kind="ADT^A01^ADT_A01", id="A1"), "EVN|A01|20261120080000", pv1]
            + ["DRG|FM15"]
        ),
        "\r".join(
            [msh.format(h=h, kind="DFT^P03", id="D1"), pv1, ft1.format(id="D1", amount="41000.00")]
        ),
        # no visit number: cannot be mapped, reported by message number, not sent
        "\r".join(
            [
                msh.format(h=h, kind="DFT^P03", id="D2"),
                "PV1|1|I|W3",
                ft1.format(id="D2", amount="1.00"),
            ]
        ),
    ]
    batch = ["FHS|^~\\&", "BHS|^~\\&", *messages, "BTS|3", "FTS|1"]
    path = tmp_path / "batch.hl7"
    path.write_bytes("\r\n".join(batch).encode())
    result = feed(stack, path)
    assert result.returncode == 1, result.stdout + result.stderr  # one message not sent
    assert "message 3: D2:" in result.stderr, result.stderr
    # a message a record
    assert "sent 2 messages" in result.stdout, result.stdout
    assert "accepted 2, duplicate 0, refused 0" in result.stdout, result.stdout
    case = wait_total(stack, h, c, Decimal("41000.00"))
    assert case["level"] == "red"


def test_malformed_records_are_answered_with_their_reason_and_kept_as_dead_letters(
    stack: Stack, tmp_path: Path
) -> None:
    h, c = HOSPITALS[3], "M1"
    wrong_amount = {**charge(h, c, 1, "10.00"), "amount": "11.00"}
    outsider = charge(OUTSIDER, c, 2, "5.00")
    path = ndjson(
        tmp_path / "bad.ndjson",
        [admitted(h, c), wrong_amount, outsider],
        extra_lines=["{this is not json"],
    )
    result = feed(stack, path)
    assert result.returncode == 1
    assert "line 4: not JSON" in result.stderr, result.stderr
    assert "accepted 1, duplicate 0, refused 2" in result.stdout, result.stdout
    assert "refused line 2: amount:" in result.stdout, result.stdout
    assert f"refused line 3: hospital_id: this intake does not take events for '{OUTSIDER}'" in (
        result.stdout
    )

    # records no file could hold, produced directly: not JSON, and an empty value
    sent = asyncio.run(_produce_raw(stack, [b"<xml/>", b""], key=f"{h}/{c}".encode()))
    answers = asyncio.run(_results_for(stack, sent))
    assert [answer["status"] for answer in answers] == ["refused", "refused"]
    assert answers[0]["errors"][0]["field"] == "body"
    assert answers[0]["key"] == f"{h}/{c}"
    assert answers[1]["reason"] == "value: empty record (or a tombstone)"
    assert answers[0]["source"] == "test-engine"

    letters = query(
        stack,
        "SELECT hospital_id, event_id, reason, payload FROM dead_letters"
        " WHERE stage = 'ingest' AND (hospital_id = $1 OR payload LIKE $2 OR payload = '<xml/>')"
        " ORDER BY id",
        h,
        f"%{OUTSIDER}%",
    )
    reasons = {(row["hospital_id"], row["event_id"]): row["reason"] for row in letters}
    assert reasons[(h, wrong_amount["event_id"])].startswith("amount:")
    assert reasons[(None, None)] is not None
    assert any(
        row["hospital_id"] is None and row["reason"].startswith("forbidden: hospital_id")
        for row in letters
    )
    assert any(row["payload"] == "<xml/>" for row in letters)
    assert ledger_counts(stack, h) == (1, 1)
    assert ledger_counts(stack, OUTSIDER) == (0, 0)


async def _produce_raw(stack: Stack, values: list[bytes], key: bytes) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.broker_port}", acks="all")
    await producer.start()
    try:
        placed = []
        for value in values:
            metadata = await producer.send_and_wait(
                stack.settings.intake_topic,
                value=value,
                key=key,
                headers=[("drgwatch-source", b"test-engine")],
            )
            placed.append((metadata.partition, metadata.offset))
        return placed
    finally:
        await producer.stop()


async def _results_for(stack: Stack, sent: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The first answer to each record sent, by its partition and offset."""

    def where(answer: dict[str, Any]) -> tuple[int, int]:
        return answer["partition"], answer["offset"]

    answers = await _answers(stack, lambda found: set(sent) <= {where(a) for a in found})
    first: dict[tuple[int, int], dict[str, Any]] = {}
    for answer in answers:
        first.setdefault(where(answer), answer)
    return [first[place] for place in sent]


async def _answers(
    stack: Stack, enough: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The answers on the results topic, read from its start until `enough` of them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=f"127.0.0.1:{stack.broker_port}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        topic = stack.settings.intake_results_topic
        consumer.assign([TopicPartition(topic, p) for p in range(stack.partitions)])
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while not enough(found) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [orjson.loads(record.value) for record in records]
        return found
    finally:
        await consumer.stop()


def dft(h: str, c: str, control_id: str, amounts: Sequence[str]) -> bytes:
    """A DFT^P03 message of a case with an FT1 (quantity 1) per amount."""
    msh = rf"MSH|^~\&|HIS|{h}|DRGWATCH|DRGWATCH|20261120090000||DFT^P03|{control_id}|P|2.5"
    pv1 = f"PV1|1|I|W3|||||||CARDIO|||||||||{c}|employee" + "|" * 24 + "20261120080000"
    ft1s = [
        f"FT1|{n}|{control_id}-{n}||20261120090000||CG|HC01^Stent^CONS|||1|{amount}|{price}|CARDIO"
        for n, (amount, price) in enumerate(((a, a) for a in amounts), start=1)
    ]
    return "\r".join([msh, pv1, *ft1s]).encode()


def test_an_hl7_message_produced_to_the_intake_is_recorded_whole_or_refused_whole(
    stack: Stack,
) -> None:
    h, c = HOSPITALS[5], "V-HL7"
    good = dft(h, c, "G1", ["100.00", "200.00", "300.00"])
    # the second FT1's extended amount is not quantity x unit amount
    bad = dft(h, c, "B1", ["100.00", "200.00", "300.00"]).replace(
        b"|1|200.00|200.00|", b"|1|250.00|200.00|"
    )
    sent = asyncio.run(_produce_raw(stack, [bad, good], key=f"{h}/{c}".encode()))
    refused, accepted = asyncio.run(_results_for(stack, sent))
    assert refused["status"] == "refused"
    assert refused["reason"].startswith("FT1-11 (FT1 #2): the extended amount 250.00"), refused
    assert refused["record_id"] == f"{stack.settings.intake_topic}/{sent[0][0]}/{sent[0][1]}"
    assert accepted["status"] == "accepted"
    assert [event["status"] for event in accepted["events"]] == ["accepted"] * 3
    # nothing of the refused message: the ledger holds the other one's three charges
    assert ledger_counts(stack, h) == (3, 3)
    wait_total(stack, h, c, Decimal("600.00"))
    [letter] = query(stack, "SELECT event_id, reason FROM dead_letters WHERE hospital_id = $1", h)
    assert letter["event_id"] == "B1" and letter["reason"].startswith("HL7 AE: FT1-11 (FT1 #2)")


def test_a_refused_record_read_again_after_a_crash_is_kept_once_and_answered_alike(
    stack: Stack,
) -> None:
    h, c = HOSPITALS[6], "R1"
    wrong = {**charge(h, c, 1, "10.00"), "amount": "11.00"}
    [(partition, offset)] = asyncio.run(
        _produce_raw(stack, [orjson.dumps(wrong)], key=f"{h}/{c}".encode())
    )
    record_id = f"{stack.settings.intake_topic}/{partition}/{offset}"
    [first] = asyncio.run(_results_for(stack, [(partition, offset)]))
    assert first["status"] == "refused"

    # the intake dies before its offset commit: its group reads the record again
    Stack.kill(stack.intake)
    asyncio.run(_rewind(stack, partition, offset))
    stack.start_intake()
    answers = asyncio.run(_answers_of(stack, record_id, count=2))
    assert [answer["record_id"] for answer in answers] == [record_id] * 2
    assert answers[1]["status"] == "refused" and answers[1]["reason"] == first["reason"]
    letters = query(stack, "SELECT source_key FROM dead_letters WHERE hospital_id = $1", h)
    assert [row["source_key"] for row in letters] == [f"{record_id}#0"]


def test_records_larger_than_the_transaction_cap_are_each_recorded_in_their_own(
    stack: Stack,
) -> None:
    h = HOSPITALS[7]
    bodies = [
        orjson.dumps({"events": [charge(h, f"T{n}", i, "1.00") for i in range(50)]})
        for n in range(3)
    ]
    Stack.kill(stack.intake)  # all three are in the topic before the intake reads one
    sent = asyncio.run(_produce_raw(stack, bodies, key=f"{h}/T".encode()))
    stack.start_intake()
    answers = asyncio.run(_results_for(stack, sent))
    assert [answer["status"] for answer in answers] == ["accepted"] * 3
    assert ledger_counts(stack, h) == (150, 150)
    # 50 events each, over the cap of 30: three transactions, each stamped when it ran
    [row] = query(
        stack,
        "SELECT count(DISTINCT received_at) AS transactions FROM ingest_ledger"
        " WHERE hospital_id = $1",
        h,
    )
    assert row["transactions"] == 3


async def _rewind(stack: Stack, partition: int, offset: int) -> None:
    """Commit `offset` as the intake group's position on the partition, as if the
    intake had died before committing what it read from there: joined as the group's
    only member (once the killed one's session has timed out)."""
    consumer = AIOKafkaConsumer(
        stack.settings.intake_topic,
        bootstrap_servers=f"127.0.0.1:{stack.broker_port}",
        group_id=stack.settings.intake_group,
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        rebalance_timeout_ms=3000,
    )
    await consumer.start()
    try:
        tp = TopicPartition(stack.settings.intake_topic, partition)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=500)  # nothing it fetches is committed
            if tp not in consumer.assignment():
                continue
            try:
                await consumer.commit({tp: offset})
                return
            except KafkaError:
                await asyncio.sleep(0.5)
        raise AssertionError(f"the intake group's offset on {tp} could not be set")
    finally:
        await consumer.stop()


async def _answers_of(stack: Stack, record_id: str, count: int) -> list[dict[str, Any]]:
    """Every answer on the results topic for a record, waiting until there are `count`."""

    def of_record(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [answer for answer in found if answer.get("record_id") == record_id]

    return of_record(await _answers(stack, lambda found: len(of_record(found)) >= count))


def charged_cases(
    h: str, cases: list[str], charges: int, *, modulus: int
) -> tuple[list[dict[str, Any]], dict[str, Decimal]]:
    """Each case admitted, then `charges` charges of varied amounts spread over them; the
    events and the total each case should reach."""
    events = [admitted(h, c) for c in cases]
    expected: dict[str, Decimal] = {}
    for n in range(charges):
        c = cases[n % len(cases)]
        amount = f"{(n % modulus) + 1}.{n % 100:02d}"
        events.append(charge(h, c, n, amount))
        expected[c] = expected.get(c, Decimal(0)) + Decimal(amount)
    return events, expected


@contextlib.contextmanager
def fed_while_the_intake_is_stopped(
    stack: Stack, path: Path, output: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The file fed (`drgwatch feed --wait`, its output to `output`) while no intake runs,
    so that it is in the topic before an intake reads any of it; then an intake started.
    The body works on the intake; on leaving, the feed must end with every record
    answered."""
    Stack.kill(stack.intake)
    feeding = start_feed(stack, path, output)
    try:
        time.sleep(3)  # the sends end well within this
        assert feeding.poll() is None, output.read_text()  # it waits for the answers
        stack.start_intake()
        yield feeding
        assert feeding.wait(150) == 0, output.read_text()
    finally:
        if feeding.poll() is None:
            feeding.kill()


def assert_recorded_once(
    stack: Stack, h: str, events: list[dict[str, Any]], expected: dict[str, Decimal]
) -> None:
    """Every event ledgered once (no event id twice), and each case at its expected total."""
    assert ledger_counts(stack, h) == (len(events), len(events))
    for c, total in expected.items():
        wait_total(stack, h, c, total, timeout=90)


def test_an_intake_killed_while_consuming_records_every_event_exactly_once(
    stack: Stack, tmp_path: Path
) -> None:
    h = HOSPITALS[4]
    events, expected = charged_cases(h, [f"K{n}" for n in range(20)], 2000, modulus=97)
    path = ndjson(tmp_path / "big.ndjson", events)
    output = tmp_path / "feed.out"
    with fed_while_the_intake_is_stopped(stack, path, output):
        # killed twice while it works through the file, wherever it is in a batch
        for recorded in (200, 1200):
            stack.wait_for(
                lambda at=recorded: ledger_counts(stack, h)[0] > at, timeout=60, interval=0.02
            )
            assert ledger_counts(stack, h)[0] < len(events), "the intake finished first"
            intake = stack.intake
            assert intake is not None
            os.killpg(intake.pid, signal.SIGKILL)
            intake.wait(10)
            stack.start_intake()
    summary = output.read_text()
    counted = re.search(r"accepted (\d+), duplicate (\d+), refused 0", summary)
    assert counted, summary
    # a record whose events were ledgered before a kill, but not answered, is answered
    # `duplicate` when read again
    assert int(counted.group(1)) + int(counted.group(2)) == len(events), summary
    assert_recorded_once(stack, h, events, expected)
    [row] = query(
        stack,
        "SELECT count(*) AS letters FROM dead_letters WHERE hospital_id = $1",
        h,
    )
    assert row["letters"] == 0


def test_an_intake_stopped_by_sigterm_answers_every_record_once(
    stack: Stack, tmp_path: Path
) -> None:
    """SIGTERM: the records in hand are recorded, answered and committed, then the intake
    exits 0 within DRGWATCH_SHUTDOWN_SECONDS; the next one reads none of them again."""
    h = HOSPITALS[8]
    events, expected = charged_cases(h, [f"T{n}" for n in range(10)], 1500, modulus=89)
    path = ndjson(tmp_path / "stopped.ndjson", events)
    output = tmp_path / "feed.out"
    with fed_while_the_intake_is_stopped(stack, path, output):
        stack.wait_for(lambda: ledger_counts(stack, h)[0] > 300, timeout=60, interval=0.02)
        intake = stack.intake
        assert intake is not None
        stopped_at = time.monotonic()
        intake.send_signal(signal.SIGTERM)
        assert intake.wait(30) == 0
        took = time.monotonic() - stopped_at
        assert took < 20, f"the intake took {took:.1f} s to stop"
        assert ledger_counts(stack, h)[0] < len(events), "the intake finished first"
        stack.start_intake()
    summary = output.read_text()
    # nothing read again: every record was answered once, none as a duplicate
    assert f"accepted {len(events)}, duplicate 0, refused 0" in summary, summary
    assert_recorded_once(stack, h, events, expected)
