"""The worker's hot path as a plain unit: `apply_batch` over a dict and a recording sink."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from services import logs
from services.alerting.batch import LiveStates, Topics, apply_batch, decode
from services.alerting.exceptions import UnprocessableEvent
from services.casecost.pricing import PriceBook
from services.casecost.state import MAX_ALERTS_KEPT, state_data
from services.metrics import EVENTS_UNSEALED
from services.wire import (
    CASE_SEQUENCE_HEADER,
    END_MARKER_KEY,
    NOT_FROM_LEDGER,
    SEAL_HEADER,
    EventSeal,
)
from tests.unit.case_events import NOW, admitted_raw, book, cost_raw

KEY = b"H1/C1"
TOPICS = Topics(changelog="cases-changelog", alerts="alerts", dead_letters="dead")
SEAL = EventSeal(bytes(range(32)))


@dataclass
class Message:
    key: bytes
    value: bytes
    offset: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int = 0
    timestamp: float | None = None  # epoch seconds, as the consumer gives a record's

    @property
    def tp(self) -> tuple[str, int]:
        return ("events", self.partition)


@dataclass
class Sink:
    """Records what is sent; acknowledges at once, or fails from the `fail_at`-th send."""

    sent: list[tuple[str, bytes | None, bytes | None, int | None]] = field(default_factory=list)
    fail_at: int | None = None

    async def __call__(
        self, topic: str, *, key: bytes | None, value: bytes | None, partition: int | None
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value, partition))
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail_at is not None and len(self.sent) >= self.fail_at:
            acknowledged.set_exception(ConnectionError("broker gone"))
        else:
            acknowledged.set_result(None)
        return acknowledged

    def on(self, topic: str) -> list[tuple[bytes | None, bytes | None]]:
        return [(key, value) for name, key, value, _ in self.sent if name == topic]


@dataclass
class Reference:
    price_book: PriceBook = field(default_factory=book)
    loaded: bool = True
    refreshed: int = 0

    async def refresh_until_done(self) -> None:
        self.refreshed += 1
        self.loaded = True


def messages(*events: dict[str, Any] | bytes, first_offset: int = 0) -> list[Message]:
    """The events as the ledger's publisher sends them: sealed (without sequence numbers)."""
    batch = []
    for offset, event in enumerate(events, start=first_offset):
        value = event if isinstance(event, bytes) else orjson.dumps(event)
        batch.append(Message(KEY, value, offset, SEAL.headers(KEY, value, None)))
    return batch


async def run(
    batch: list[Message],
    store: dict[bytes, bytes],
    sink: Sink,
    *,
    live: LiveStates | None = None,
    reference: Reference | None = None,
) -> list[int]:
    durable: list[int] = []
    await apply_batch(
        batch,
        store=store,
        send=sink,
        reference=reference or Reference(),
        live=live or LiveStates(16),
        topics=TOPICS,
        seal=SEAL,
        gap_timeout=timedelta(minutes=5),
        now=NOW,
        on_durable=lambda message: durable.append(message.offset),
    )
    return durable


async def test_a_batch_writes_each_changed_case_once_and_then_reports_every_message() -> None:
    store: dict[bytes, bytes] = {}
    sink = Sink()
    batch = messages(admitted_raw(), *(cost_raw(f"c{n}", "10.00") for n in range(30)))
    durable = await run(batch, store, sink)
    assert durable == list(range(31))
    changelog = sink.on(TOPICS.changelog)
    assert [key for key, _ in changelog] == [KEY, END_MARKER_KEY]
    assert changelog[-1] == (END_MARKER_KEY, None)
    state = state_data(store[KEY])
    assert state["total_cost"] == "300.00" and state["events_applied"] == 31
    assert store[KEY] == changelog[0][1]


def delays_observed() -> tuple[float, float]:
    """The count and the sum of the level alerts' delays observed so far."""
    labels = {"kind": "level"}
    count = REGISTRY.get_sample_value("drgwatch_event_to_alert_seconds_count", labels) or 0.0
    total = REGISTRY.get_sample_value("drgwatch_event_to_alert_seconds_sum", labels) or 0.0
    return count, total


async def test_an_alert_counts_its_delay_from_the_receipt_of_the_event_that_raised_it() -> None:
    # the events occurred days before this run; ingest received the charge 2 s ago
    received = time.time() - 2.0
    admitted, charge = messages(admitted_raw(), cost_raw("c1", "9500.00"))
    charge.timestamp = received
    count, total = delays_observed()
    sink = Sink()
    await run([admitted, charge], {}, sink)
    alerts = [orjson.loads(value or b"") for _, value in sink.on(TOPICS.alerts)]
    assert [alert["level"] for alert in alerts if alert["kind"] == "level"] == ["yellow"]
    assert NOW.timestamp() < received - 86400, "the event is dated days before its receipt"
    new_count, new_total = delays_observed()
    assert new_count - count == 1
    assert 2.0 <= new_total - total < 60


async def test_an_alert_from_a_record_without_a_timestamp_has_no_delay() -> None:
    count, _ = delays_observed()
    sink = Sink()
    await run(messages(admitted_raw(), cost_raw("c1", "9500.00")), {}, sink)
    assert sink.on(TOPICS.alerts), "an alert was raised"
    assert delays_observed()[0] == count


async def test_a_batch_the_broker_does_not_acknowledge_leaves_the_table_as_it_was() -> None:
    store: dict[bytes, bytes] = {}
    await run(messages(admitted_raw()), store, Sink())
    before = dict(store)
    failing = Sink(fail_at=1)
    live = LiveStates(16)
    durable: list[int] = []
    with pytest.raises(ConnectionError):
        await apply_batch(
            messages(cost_raw("c1", "9600.00"), first_offset=1),
            store=store,
            send=failing,
            reference=Reference(),
            live=live,
            topics=TOPICS,
            seal=SEAL,
            gap_timeout=timedelta(minutes=5),
            now=NOW,
            on_durable=lambda message: durable.append(message.offset),
        )
    assert store == before and durable == []
    assert failing.on(TOPICS.alerts) == []  # no alert of an effect the broker never held
    # applied again (as after a restart), it counts once
    await run(messages(cost_raw("c1", "9600.00"), first_offset=1), store, Sink(), live=live)
    assert state_data(store[KEY])["total_cost"] == "9600.00"


async def test_an_unprocessable_message_becomes_a_dead_letter_and_the_batch_goes_on() -> None:
    store: dict[bytes, bytes] = {}
    sink = Sink()
    batch = messages(admitted_raw(), b"{not json", cost_raw("c1", "9500.00"))
    assert await run(batch, store, sink) == [0, 1, 2]
    (letter,) = sink.on(TOPICS.dead_letters)
    decoded = orjson.loads(letter[1] or b"")
    assert decoded["source"] == "0:1" and decoded["reason"].startswith("not JSON")
    assert state_data(store[KEY])["level"] == "yellow"


def json_lines_of(logger_name: str) -> tuple[logging.Handler, list[str]]:
    """A handler writing the logger's records as production JSON lines into a list."""
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Lines()
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger(logger_name).addHandler(handler)
    return handler, lines


async def test_a_dead_letters_line_carries_the_event_and_case_ids_and_nothing_of_the_event() -> (
    None
):
    # a charge the contract refuses (a negative quantity), naming an item and a patient
    refused = cost_raw("c9", "9500.00", item_code="STENT") | {
        "quantity": "-1",
        "item_name": "Qorvexa imported stent 88317",
        "patient_name": "Lin Meixiu-Zqa",
    }
    handler, lines = json_lines_of("services.alerting.batch")
    try:
        await run(messages(admitted_raw(), refused, b"{not json"), {}, Sink())
    finally:
        logging.getLogger("services.alerting.batch").removeHandler(handler)
    first, second = (orjson.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["message"].startswith("events record 0:1 ")
    assert (first["event_id"], first["hospital_id"], first["case_id"]) == ("c9", "H1", "C1")
    # a record that is not JSON names no ids
    assert second["message"].startswith("events record 0:2 ")
    assert not {"event_id", "hospital_id", "case_id"} & set(second)
    assert "Qorvexa" not in "".join(lines) and "Meixiu" not in "".join(lines)


def unsealed(message: Message, how: str) -> Message:
    """The message as a producer without the ledger's key would send it."""
    if how == "no seal":
        message.headers = []
    elif how == "another key's seal":
        message.headers = EventSeal(b"k" * 32).headers(message.key, message.value, None)
    elif how == "sequence added":
        message.headers = [(CASE_SEQUENCE_HEADER, b"1"), *message.headers]
    elif how == "seal of another value":
        message.value = message.value.replace(b"9500.00", b"95.00")
    return message


@pytest.mark.parametrize(
    "how", ["no seal", "another key's seal", "sequence added", "seal of another value"]
)
async def test_a_message_without_the_ledgers_seal_is_a_dead_letter_and_changes_no_case(
    how: str,
) -> None:
    store: dict[bytes, bytes] = {}
    sink = Sink()
    await run(messages(admitted_raw(), cost_raw("c1", "100.00")), store, sink)
    before = dict(store)
    refused_before = EVENTS_UNSEALED._value.get()  # noqa: SLF001 - the counter's value
    batch = messages(cost_raw("c2", "9500.00"), cost_raw("c3", "7.00"), first_offset=2)
    unsealed(batch[0], how)
    assert await run(batch, store, sink) == [2, 3]  # refused, and the batch goes on
    (letter,) = sink.on(TOPICS.dead_letters)
    decoded = orjson.loads(letter[1] or b"")
    assert decoded["source"] == "0:2" and decoded["reason"] == NOT_FROM_LEDGER
    assert "intake topic" in decoded["reason"] and letter[0] == KEY
    assert "c2" in decoded["payload"]
    state = state_data(store[KEY])
    assert state["total_cost"] == "107.00" and state["events_applied"] == 3
    assert state_data(before[KEY])["total_cost"] == "100.00"
    assert EVENTS_UNSEALED._value.get() == refused_before + 1  # noqa: SLF001


async def test_a_sealed_command_is_applied_and_an_unsealed_one_refused() -> None:
    store: dict[bytes, bytes] = {}
    sink = Sink()
    await run(messages(admitted_raw()), store, sink)
    release = {
        "type": "_release",
        "event_id": "release-x",
        "hospital_id": "H1",
        "case_id": "C1",
        "occurred_at": NOW.isoformat(),
    }
    forged = messages(release, first_offset=1)
    forged[0].headers = [(SEAL_HEADER, b"0" * 64)]
    await run(forged, store, sink)
    (letter,) = sink.on(TOPICS.dead_letters)
    assert orjson.loads(letter[1] or b"")["reason"] == NOT_FROM_LEDGER
    await run(messages(release, first_offset=2), store, sink)
    assert len(sink.on(TOPICS.dead_letters)) == 1  # the sealed one is not refused


async def test_a_case_raising_many_alerts_in_one_batch_is_written_before_any_drop_out() -> None:
    # up and down across blue many times: each crossing is an alert, the state keeps the
    # latest MAX_ALERTS_KEPT, so the batch writes the state early
    store: dict[bytes, bytes] = {}
    sink = Sink()
    events: list[dict[str, Any]] = [admitted_raw()]
    for n in range(MAX_ALERTS_KEPT):
        events.append(cost_raw(f"up{n}", "9000.00", item_code=f"U{n}"))
        events.append(cost_raw(f"down{n}", "9000.00", item_code=f"U{n}") | {"type": "credit"})
    await run(messages(*events), store, sink)
    alerts = {orjson.loads(value or b"")["alert_id"] for _, value in sink.on(TOPICS.alerts)}
    written = {
        alert["alert_id"]
        for key, value in sink.on(TOPICS.changelog)
        if key == KEY
        for alert in state_data(value or b"")["alerts"]
    }
    assert len(alerts) == 2 * MAX_ALERTS_KEPT
    assert alerts <= written  # every alert reached the changelog in some state
    assert len(sink.on(TOPICS.changelog)) > 2


async def test_events_wait_for_their_ledger_turn_across_batches() -> None:
    store: dict[bytes, bytes] = {}
    sink = Sink()
    early = messages(cost_raw("c2", "500.00"))
    early[0].headers = SEAL.headers(KEY, early[0].value, 2)
    await run(early, store, sink)
    assert state_data(store[KEY])["total_cost"] == "0"
    first = messages(admitted_raw(), first_offset=1)
    first[0].headers = SEAL.headers(KEY, first[0].value, 1)
    await run(first, store, sink)
    state = state_data(store[KEY])
    assert state["total_cost"] == "500.00" and state["next_sequence"] == 3


async def test_a_live_state_is_used_only_while_the_table_holds_its_bytes() -> None:
    store: dict[bytes, bytes] = {}
    live = LiveStates(16)
    await run(messages(admitted_raw()), store, Sink(), live=live)
    await run(messages(cost_raw("c1", "100.00"), first_offset=1), store, Sink(), live=live)
    # another writer (a recovery, a rebalance) replaced the bytes: the table wins
    replaced = state_data(store[KEY])
    replaced["total_cost"] = "5000.00"
    store[KEY] = orjson.dumps(replaced)
    await run(messages(cost_raw("c2", "100.00"), first_offset=2), store, Sink(), live=live)
    assert state_data(store[KEY])["total_cost"] == "5100.00"


async def test_a_command_needing_newer_reference_data_reloads_it_first() -> None:
    reference = Reference()
    store: dict[bytes, bytes] = {}
    await run(messages(admitted_raw()), store, Sink(), reference=reference)
    command = {
        "type": "_reprice",
        "event_id": "reprice-2",
        "hospital_id": "H1",
        "case_id": "C1",
        "occurred_at": NOW.isoformat(),
        "reference_version": reference.price_book.version + 1,
    }
    await run(messages(command, first_offset=1), store, Sink(), reference=reference)
    assert reference.refreshed == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[1, 2]", "body"),
        (b'{"type": "_release", "event_id": "x"}', "bad release command"),
        (b'{"type": "_reprice", "hospital_id": "H1"}', "bad reprice command"),
    ],
)
def test_decode_names_why_a_message_is_not_an_event(raw: bytes, reason: str) -> None:
    with pytest.raises(UnprocessableEvent) as refused:
        decode(raw)
    assert reason in refused.value.message
