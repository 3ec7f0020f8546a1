"""The worker as `create_worker` wires it, no broker, no database: fed as the consumer
feeds it, a fetched batch at a time (the only way events reach it).

The worker hands its changelog, alert and dead-letter records to the app's producer,
which would connect to Kafka, so the producer's `send` is replaced by a recorder that
acknowledges at once. The database is only used by the worker's tasks and timers,
which are not started here: the tests check that no database file appears.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP

from services.alerting import transport
from services.alerting.casestore import RocksCases
from services.alerting.settings import WorkerSettings, worker_tables_dir
from services.alerting.worker import WorkerApp, create_worker, fatal
from services.casecost.pricing import Thresholds
from services.casecost.state import state_data
from services.wire import CASE_SEQUENCE_HEADER, END_MARKER_KEY, NOT_FROM_LEDGER, EventSeal
from tests.unit.case_events import admitted_raw, at, book, cost_raw, raw

KEY = b"H1/C1"
# the key the worker would read from the database (which these tests do not start)
SEAL = EventSeal(hashlib.sha256(b"agent test seal").digest())


@dataclass(frozen=True)
class Acknowledged:
    """What the broker answers to a record (the part of aiokafka's RecordMetadata read)."""

    partition: int
    offset: int


class SentRecorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.last_offset: dict[tuple[str, int], int] = {}  # (topic, partition) -> offset

    def on(self, topic: str) -> list[tuple[bytes | None, bytes | None]]:
        return [(key, value) for name, key, value in self.sent if name == topic]


def record_sends(worker: WorkerApp, monkeypatch: pytest.MonkeyPatch) -> SentRecorder:
    """Replace the producer by a recorder that the broker acknowledges at once."""
    recorder = SentRecorder()

    async def record(
        topic: str, key: bytes | None, value: bytes | None, partition: int | None, *_: Any
    ) -> asyncio.Future[Acknowledged]:
        recorder.sent.append((topic, key, value))
        at = (topic, partition or 0)
        recorder.last_offset[at] = recorder.last_offset.get(at, -1) + 1
        delivered: asyncio.Future[Acknowledged] = asyncio.get_running_loop().create_future()
        delivered.set_result(Acknowledged(at[1], recorder.last_offset[at]))
        return delivered

    monkeypatch.setattr(worker.app.producer, "send", record)
    return recorder


@pytest.fixture
def sent(worker: WorkerApp, monkeypatch: pytest.MonkeyPatch) -> SentRecorder:
    return record_sends(worker, monkeypatch)


@pytest.fixture(params=["rocksdb", "memory"])
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> WorkerSettings:
    return WorkerSettings(
        data_dir=tmp_path,
        topic_prefix="agenttest",
        topic_partitions=1,
        batch_seconds=0.001,
        worker_store=request.param,
    )


@pytest.fixture
def worker(settings: WorkerSettings) -> WorkerApp:
    worker_app = create_worker(settings)
    worker_app.app.finalize()
    worker_app.reference.price_book = book(
        thresholds={("H1", "D2"): Thresholds(Decimal("0.5"), Decimal("0.6"), Decimal("0.7"))}
    )
    worker_app.reference.loaded = True
    worker_app.seal.seal = SEAL
    return worker_app


@dataclass
class TransportMessage:
    """What the consumer's fetch loop hands the worker (see transport.deliver_in_batches)."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    offset: int
    partition: int = 0
    timestamp: float | None = None

    @property
    def tp(self) -> TP:
        return TP("events", self.partition)


@dataclass
class Feeder:
    """Feeds the worker as the consumer does: a fetched batch at a time."""

    worker: WorkerApp
    offset: int = 0

    async def put_many(
        self, messages: list[tuple[bytes, bytes, int | None]], *, sealed: bool = True
    ) -> None:
        """Deliver the messages, sealed as the ledger's publisher seals them (or not)."""
        before = self.worker.progress.applied
        batch = []
        for key, value, case_seq in messages:
            if sealed:
                headers = SEAL.headers(key, value, case_seq)
            else:
                headers = [(CASE_SEQUENCE_HEADER, str(case_seq).encode())] if case_seq else []
            batch.append(TransportMessage(key, value, headers, self.offset))
            self.offset += 1
        await self.worker.deliver(batch)
        assert self.worker.progress.applied == before + len(messages)


@pytest.fixture
def agent(worker: WorkerApp, sent: SentRecorder) -> Feeder:
    return Feeder(worker)


async def put(
    agent: Feeder, event: dict[str, Any] | bytes, key: bytes = KEY, case_seq: int | None = None
) -> None:
    """Hand the worker one message and wait until it is applied."""
    value = event if isinstance(event, bytes) else orjson.dumps(event)
    await agent.put_many([(key, value, case_seq)])


def store_state(worker: WorkerApp, key: bytes, value: bytes) -> None:
    """Put a state into the table as a recovery would (partition 0)."""
    if isinstance(worker.case_table, RocksCases):
        worker.case_table.put(key, value, partition=0)
    else:
        worker.cases.data[key] = value


def case(worker: WorkerApp, key: bytes = KEY) -> dict[str, Any]:
    stored = worker.case_state(key)
    assert stored is not None, f"no state for {key!r}"
    return stored


async def test_events_build_the_case_state_in_the_table(
    worker: WorkerApp, agent: Any, sent: SentRecorder, settings: WorkerSettings
) -> None:
    assert worker.case_state(KEY) is None
    await put(agent, admitted_raw())
    state = case(worker)
    assert state["level"] == "none" and state["standard_cost"] == "10000.00"
    assert state["total_cost"] == "0" and state["events_applied"] == 1
    await put(agent, cost_raw("c1", "4000.00", category="drug"))
    await put(agent, cost_raw("c2", "5000.00", category="consumable", item_code="STENT"))
    state = case(worker)
    assert state["total_cost"] == "9000.00"
    assert state["cost_by_category"] == {"consumable": "5000.00", "drug": "4000.00"}
    assert state["level"] == "blue" and state["ratio"] == "0.9000"
    assert state["department"] == "CARD" and state["drg_code"] == "D1"
    assert state["events_applied"] == 3
    # one level alert (a forecast waits for two full days of the stay: the unit tests)
    messages = sent.on(settings.alerts_topic)
    assert [orjson.loads(value)["kind"] for _, value in messages] == ["level"]
    alert_message = messages[0]
    assert alert_message[0] == KEY
    alert = orjson.loads(alert_message[1])
    assert (alert["level"], alert["previous_level"], alert["event_id"]) == ("blue", "none", "c2")
    assert sent.on(settings.dead_letter_topic) == []


async def test_a_duplicate_is_not_counted_twice(
    worker: WorkerApp, agent: Any, sent: SentRecorder, settings: WorkerSettings
) -> None:
    await put(agent, admitted_raw())
    charge = cost_raw("c1", "9600.00")
    for _ in range(3):
        await put(agent, charge)
    state = case(worker)
    assert state["total_cost"] == "9600.00" and state["events_applied"] == 2
    assert state["level"] == "yellow" and state["alert_seq"] == 1
    # the earlier alert is handed back on redelivery (same alert_id), never a new one
    alert_ids = {orjson.loads(value)["alert_id"] for _, value in sent.on(settings.alerts_topic)}
    assert len(alert_ids) == 1 and len(sent.on(settings.alerts_topic)) == 3


async def test_level_changes_raise_one_alert_each(
    worker: WorkerApp, agent: Any, sent: SentRecorder, settings: WorkerSettings
) -> None:
    for event in [
        admitted_raw(drg_code="D2"),  # 20000.00, thresholds for H1/D2: 50% / 60% / 70%
        cost_raw("c1", "10000.00"),  # blue
        cost_raw("c2", "100.00", item_code="B"),  # still blue
        cost_raw("c3", "4000.01", item_code="C"),  # red
        raw("drg_assigned", "g1", at(5), drg_code="D1"),  # 14100.01 of 10000.00: red again
        raw(
            "credit",
            "r1",
            at(6),
            department="CARD",
            item_code="C",
            item_name="c",
            category="drug",
            quantity="1",
            unit_price="4000.01",
            amount="4000.01",
        ),  # 10100.00
        cost_raw("c4", "0.01", item_code="D"),
    ]:
        await put(agent, event)
    levels = [
        (alert["previous_level"], alert["level"], alert["transition"])
        for alert in (orjson.loads(value) for _, value in sent.on(settings.alerts_topic))
    ]
    assert levels == [("none", "blue", "escalated"), ("blue", "red", "escalated")]
    state = case(worker)
    assert state["total_cost"] == "10100.01" and state["level"] == "red"
    assert state["standard_cost"] == "10000.00"


async def test_invalid_payloads_go_to_dead_letters_and_the_agent_carries_on(
    worker: WorkerApp, agent: Any, sent: SentRecorder, settings: WorkerSettings
) -> None:
    await put(agent, admitted_raw())
    await put(agent, b"not json at all")
    await put(agent, orjson.dumps([1, 2, 3]))
    await put(agent, cost_raw("bad", "10.00") | {"amount": "10.01"})
    await put(agent, cost_raw("float", "10.00") | {"amount": 10.0})
    await put(agent, orjson.dumps({"type": "_reprice", "event_id": "x"}))
    await put(agent, cost_raw("good", "9500.00"))
    state = case(worker)
    assert state["total_cost"] == "9500.00" and state["events_applied"] == 2
    assert state["level"] == "yellow"
    dead = [orjson.loads(value) for _, value in sent.on(settings.dead_letter_topic)]
    assert len(dead) == 5
    assert dead[0]["payload"] == "not json at all" and dead[0]["reason"].startswith("not JSON")
    assert "amount" in dead[2]["reason"] and "quantity x unit_price" in dead[2]["reason"]
    assert "decimal string" in dead[3]["reason"]
    assert dead[4]["reason"].startswith("bad reprice command")
    assert all(key == KEY for key, _ in sent.on(settings.dead_letter_topic))


async def test_ledger_sequence_header_puts_early_events_on_hold_until_the_gap_fills(
    worker: WorkerApp, agent: Any, sent: SentRecorder, settings: WorkerSettings
) -> None:
    await put(agent, admitted_raw(), case_seq=1)
    await put(agent, cost_raw("c3", "1000.00", item_code="ICU"), case_seq=3)
    state = case(worker)
    assert state["total_cost"] == "0" and list(state["held"]) == ["3"]
    assert state["next_sequence"] == 2 and state["held_since"] is not None
    await put(agent, cost_raw("c2", "9500.00"), case_seq=2)
    state = case(worker)
    assert state["total_cost"] == "10500.00" and state["held"] == {}
    assert state["next_sequence"] == 4 and state["events_applied"] == 3
    # in ledger order the case went yellow (9500.00) and then red (10500.00)
    levels = [orjson.loads(value)["level"] for _, value in sent.on(settings.alerts_topic)]
    assert levels == ["yellow", "red"]


async def test_an_event_produced_straight_into_the_topic_changes_no_case(
    worker: WorkerApp, agent: Feeder, sent: SentRecorder, settings: WorkerSettings
) -> None:
    await put(agent, admitted_raw(), case_seq=1)
    charge = orjson.dumps(cost_raw("c2", "9500.00"))
    await agent.put_many([(KEY, charge, 2)], sealed=False)
    state = case(worker)
    assert state["total_cost"] == "0" and state["events_applied"] == 1
    assert state["held"] == {} and sent.on(settings.alerts_topic) == []
    (letter,) = [orjson.loads(value) for _, value in sent.on(settings.dead_letter_topic)]
    assert (
        letter["reason"] == NOT_FROM_LEDGER and orjson.loads(letter["payload"])["event_id"] == "c2"
    )
    await put(agent, orjson.loads(charge), case_seq=2)  # through the ledger, it counts
    assert case(worker)["total_cost"] == "9500.00"


async def test_the_workers_own_commands_are_sealed_and_applied(
    worker: WorkerApp, agent: Feeder, sent: SentRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    await put(agent, admitted_raw(), case_seq=1)
    await put(agent, cost_raw("c3", "1000.00", item_code="ICU"), case_seq=3)
    held = case(worker)
    held["held_since"] = "2026-01-01T00:00:00+00:00"  # waiting longer than the gap timeout
    store_state(worker, KEY, orjson.dumps(held))
    commands: list[dict[str, Any]] = []

    async def send(**record: Any) -> None:
        commands.append(record)

    monkeypatch.setattr(worker.events, "send", send)
    await worker.release_stale_gaps()
    (command,) = commands
    assert command["key"] == KEY and orjson.loads(command["value"])["type"] == "_release"
    assert SEAL.verify(command["key"], command["value"], command["headers"])
    batch = [TransportMessage(KEY, command["value"], command["headers"], agent.offset)]
    await worker.deliver(batch)
    assert case(worker)["total_cost"] == "1000.00" and case(worker)["held"] == {}


async def test_cases_are_kept_apart(worker: WorkerApp, agent: Any) -> None:
    await put(agent, admitted_raw())
    await put(agent, admitted_raw(hospital_id="H1", case_id="C2", drg_code="D2"), key=b"H1/C2")
    await put(agent, cost_raw("c1", "100.00"))
    await put(agent, cost_raw("c1", "200.00", case_id="C2"), key=b"H1/C2")
    assert case(worker)["total_cost"] == "100.00"
    other = case(worker, b"H1/C2")
    assert other["total_cost"] == "200.00" and other["standard_cost"] == "20000.00"


async def test_charge_before_admission_is_priced_once_admitted(
    worker: WorkerApp, agent: Any, sent: SentRecorder, settings: WorkerSettings
) -> None:
    await put(agent, cost_raw("c1", "9600.00"))
    assert case(worker)["level"] == "unpriced" and sent.on(settings.alerts_topic) == []
    await put(agent, admitted_raw())
    state = case(worker)
    assert state["level"] == "yellow" and state["total_cost"] == "9600.00"
    assert len(sent.on(settings.alerts_topic)) == 1


async def test_the_table_value_is_what_the_changelog_carries(worker: WorkerApp, agent: Any) -> None:
    await put(agent, admitted_raw())
    await put(agent, cost_raw("c1", "9600.00"))
    stored = case(worker)
    # the changelog serializes the dict as JSON; it must come back as the same state
    from services.casecost.state import CaseState

    restored = CaseState.from_dict(orjson.loads(orjson.dumps(stored)))
    assert orjson.loads(orjson.dumps(restored.to_dict())) == orjson.loads(orjson.dumps(stored))


async def test_applying_events_touches_no_database(
    worker: WorkerApp, agent: Any, settings: WorkerSettings
) -> None:
    await put(agent, admitted_raw())
    await put(agent, cost_raw("c1", "9600.00"))
    assert case(worker)["level"] == "yellow"
    assert not (settings.data_dir / "drgwatch.db").exists()
    # nothing but the worker's own table store
    assert list(settings.data_dir.iterdir()) == [worker_tables_dir(settings.data_dir)]


async def test_the_rocksdb_store_keeps_each_state_in_its_partition_with_the_offset_reached(
    settings: WorkerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = create_worker(settings.model_copy(update={"topic_partitions": 4}))
    worker.app.finalize()
    worker.reference.price_book = book()
    worker.reference.loaded = True
    worker.seal.seal = SEAL
    if not isinstance(worker.case_table, RocksCases):
        pytest.skip("the in-memory store keeps no offsets")
    recorder = record_sends(worker, monkeypatch)
    store = worker.cases.data
    for partition in (2, 3):  # assigned: Faust opens their databases
        transport.partition_db(store, partition)
    other, revoked = b"H1/C2", b"H1/C3"
    messages = [
        (KEY, admitted_raw(), 2),
        (other, admitted_raw(case_id="C2"), 3),
        (KEY, cost_raw("c1", "100.00"), 2),
        (revoked, admitted_raw(case_id="C3"), 1),  # a partition no longer held
    ]
    await worker.deliver(
        [
            TransportMessage(
                key, orjson.dumps(body), SEAL.headers(key, orjson.dumps(body), None), 0, p
            )
            for key, body, p in messages
        ]
    )
    changelog = worker.topics.changelog
    dbs = transport.partition_dbs(store)
    assert set(dbs) == {1, 2, 3}
    assert state_data(dbs[2].get(KEY))["total_cost"] == "100.00" and dbs[2].get(other) is None
    assert state_data(dbs[3].get(other))["case_id"] == "C2" and dbs[3].get(KEY) is None
    for partition in (2, 3):  # up to the partition's last record, its end marker
        assert (
            store.persisted_offset(TP(changelog, partition))
            == recorder.last_offset[(changelog, partition)]
        )
    # its state is kept, but no offset: its new owner may have written records before
    assert state_data(dbs[1].get(revoked))["case_id"] == "C3"
    assert store.persisted_offset(TP(changelog, 1)) is None
    # the state just written is handed out as the object the batch path kept decoded
    assert worker.case_table.get(KEY) is worker.case_table.get(KEY)
    assert sorted(key for key, _ in worker.case_table.items()) == [KEY, other, revoked]


async def test_a_batch_writes_each_changed_case_once_with_its_final_state(
    worker: WorkerApp, agent: Any, sent: SentRecorder, settings: WorkerSettings
) -> None:
    changelog = settings.case_changelog_topic
    await put(agent, admitted_raw())
    before = len(sent.on(changelog))
    charges = [cost_raw(f"c{n}", "10.00", item_code=f"I{n}") for n in range(40)]
    batches_before = worker.progress.batches
    # fetched together: one batch
    await agent.put_many([(KEY, orjson.dumps(charge), None) for charge in charges])
    written = sent.on(changelog)[before:]
    records = [(key, value) for key, value in written if key != END_MARKER_KEY]
    assert len(records) == 1
    # each batch closes its partition with a tombstone of its own (tansu's end offsets)
    assert written[-1] == (END_MARKER_KEY, None)
    markers = len(written) - len(records)
    assert markers == worker.progress.batches - batches_before
    last = state_data(records[-1][1])
    assert last["total_cost"] == "400.00" and last["events_applied"] == 41
    # the table holds exactly what the changelog carries
    assert orjson.loads(orjson.dumps(case(worker))) == last


def test_fatal_exits_logging_the_error_type_and_stack_but_not_its_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exits: list[int] = []

    def record_exit(code: int) -> NoReturn:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", record_exit)
    free_text = ", ".join(["Stent for Zhang San", "diabetic"])  # as a payload would carry
    try:
        raise ValueError(f"item_name: {free_text!r} is too long")
    except ValueError as error:
        with pytest.raises(SystemExit):
            fatal(error)
    assert exits == [70]
    assert "ValueError" in caplog.text and "test_worker_agent.py" in caplog.text
    assert "Zhang San" not in caplog.text


def test_the_worker_runs_on_the_offset_guarding_consumer(worker: WorkerApp) -> None:
    consumer = worker.app.consumer
    assert isinstance(consumer, transport._Consumer)
    assert isinstance(consumer._read_offset, transport.ReadOffsets)
    assert consumer.batch_handlers == {worker.settings.events_topic: worker.deliver}


def _owner(path: str) -> Any:
    """The class "module:Class" names, or the module a bare "module" names."""
    module, _, name = path.partition(":")
    found = importlib.import_module(module)
    return getattr(found, name) if name else found


@pytest.mark.parametrize(
    "private", transport.PRIVATE_NAMES, ids=[f"{p.owner}.{p.name}" for p in transport.PRIVATE_NAMES]
)
async def test_every_private_name_the_transport_relies_on_still_exists(
    private: transport.PrivateName, worker: WorkerApp
) -> None:
    # an upgrade that renamed one would make an override silently stop applying, and
    # commits would run ahead of what is durable again
    owner = _owner(private.owner)
    if private.use == "overridden":
        assert any(private.name in vars(base) for base in owner.__mro__), (
            f"{private.owner} no longer defines {private.name}"
        )
        ours = transport._ConsumerThread if "Thread" in private.owner else transport._Consumer
        assert private.name in vars(ours), f"{private.name} is listed but not overridden"
    elif private.use in ("called", "read"):
        assert hasattr(owner, private.name), f"{private.owner} has no {private.name}"
    else:  # an attribute of instances: look at a live one
        instance: Any
        if owner is AIOKafkaConsumer:
            instance = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
        elif private.owner.startswith("faust.tables.recovery"):
            instance = worker.app.tables.recovery
        elif private.owner.startswith("faust.stores.rocksdb"):
            if worker.settings.worker_store != "rocksdb":
                pytest.skip("a RocksDB store's attribute")
            instance = worker.cases.data
        else:
            instance = worker.app.consumer
        assert isinstance(instance, owner)
        assert hasattr(instance, private.name), f"{private.owner} instances lack {private.name}"


def test_the_fetch_loop_followed_is_the_installed_fausts() -> None:
    source = inspect.getsource(FaustConsumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == transport.FAUST_FETCH_LOOP_SHA256, (
        "Faust's fetch loop changed: compare it with transport._Consumer._drain_messages"
    )


async def test_a_fetch_hands_over_at_most_a_batch_of_events(worker: WorkerApp) -> None:
    # the aiokafka consumer the worker fetches with, as its consumer thread creates it
    thread = worker.app.consumer._thread
    fetching = thread._create_worker_consumer(worker.app.consumer.transport)
    try:
        assert isinstance(fetching, AIOKafkaConsumer)
        assert fetching._max_poll_records == worker.settings.batch_max_events == 1000
    finally:
        await fetching.stop()


def test_a_scan_of_the_rocksdb_table_leaves_its_block_cache_to_the_batches(
    settings: WorkerSettings,
) -> None:
    worker = create_worker(settings)
    worker.app.finalize()
    if not isinstance(worker.case_table, RocksCases):
        pytest.skip("a RocksDB store's block cache")
    db = transport.partition_db(worker.cases.data, 0)
    states = {f"H1/C{number}".encode(): b"[" + bytes(900) + b"]" for number in range(2000)}
    for key, value in states.items():
        worker.case_table.put(key, value, partition=0)
    db.flush()  # into a table file, read through the block cache from now on

    def cached() -> int:
        return int(db.property_int_value("rocksdb.block-cache-usage") or 0)

    assert dict(worker.case_table.items()) == states
    scanned = cached()
    assert worker.case_table.get(b"H1/C7") == states[b"H1/C7"]
    assert scanned < 1000 < cached()  # a batch's read is cached: a block of states
