"""The worker's hot path: apply one fetched batch of the events topic to the case table.

`apply_batch` is a plain coroutine over its collaborators, which are passed in: the
table's store of case states (as changelog bytes), a record sink (the producer), the
price book in use, the recently decoded states, the events topic's seal and the clock.
The worker wires it to Faust and the broker; a unit test or a profiler calls it with a
dict and a recorder.

What it guarantees:

- a message without the events topic's seal (services/wire.py EventSeal: one that did
  not come from the ingest ledger, nor is the worker's own command) changes nothing: it
  becomes a dead-letter record naming the intake topic, checked before it is decoded;
- each message is decoded (an event or an internal command) and folded into its case
  in ledger order (`receive` in the core); a message that is not a valid event becomes
  a dead-letter record, and the batch carries on;
- each changed case is written to the changelog once per batch, with its final state
  (or earlier, when its unsent alerts would otherwise fall out of the state's bounded
  alert list);
- the table takes the new states, and `on_durable` hears of each message, only after
  the broker acknowledged every record of the batch: a batch abandoned half-way (a
  rebalance cancels it, a send fails) leaves the table as it was, and its messages,
  never reported durable, are applied again;
- each written changelog partition ends with a one-record batch (END_MARKER_KEY), see
  services/wire.py;
- alerts go to the alerts topic last; they are also kept in the states, which the
  projector reads, so an alert record lost here is still projected.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from services.alerting.exceptions import UnprocessableEvent
from services.casecost.apply import Release, Reprice, new_case, receive, release_held
from services.casecost.events import Event, fast_event, parse_event
from services.casecost.pricing import PriceBook
from services.casecost.state import MAX_ALERTS_KEPT, CaseState, state_data
from services.logs import ids_of
from services.metrics import (
    EVENTS_UNSEALED,
    SEQUENCE_GAPS_RELEASED,
    WORKER_DEAD_LETTERS,
    count_alert,
)
from services.validation import field_errors, summary
from services.wire import (
    COMMAND_TYPES,
    END_MARKER_KEY,
    NOT_FROM_LEDGER,
    REPRICE_COMMAND,
    EventSeal,
    case_key,
    case_sequence,
    decode_command,
    encode_dead_letter,
)

log = logging.getLogger(__name__)
Command = Event | Reprice | Release
# The collector's thresholds for a process that runs the batch path: a full pass walks
# every tracked object, the recently changed case states kept for the next batch
# (LiveStates) among them, and finds next to nothing to free (the hot path builds no
# cycles); at the default (a full pass after 10 young ones, once the old objects grew a
# quarter) it cost about a quarter of the worker's CPU. One full pass in 1,000 young ones
# still frees what cycles do form.
COLLECTOR_THRESHOLDS = (700, 10, 1000)


class Message(Protocol):
    """A record as the consumer's fetch loop hands it over."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Any: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def tp(self) -> Any: ...  # topic and partition, as the consumer commits them
    @property
    def timestamp(self) -> float | None: ...  # epoch seconds: ingest's receipt of an event


class CaseStore(Protocol):
    """The table's data: case key -> the case state as changelog JSON."""

    def get(self, key: bytes, /) -> bytes | None: ...
    def update(self, values: Mapping[bytes, bytes], /) -> None: ...


class RecordSink(Protocol):
    """Hands a record to the producer; what it returns resolves on the broker's ack."""

    async def __call__(
        self, topic: str, *, key: bytes | None, value: bytes | None, partition: int | None
    ) -> Awaitable[Any]: ...


class PriceBookSource(Protocol):
    """The price book in use; reloaded on demand when a command needs a newer one."""

    @property
    def price_book(self) -> PriceBook: ...
    @property
    def loaded(self) -> bool: ...
    async def refresh_until_done(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Topics:
    changelog: str
    alerts: str
    dead_letters: str


@dataclass(frozen=True, slots=True)
class AppliedBatch:
    """What a batch did (for progress and metrics)."""

    messages: int
    cases_written: int
    alerts: int
    dead_letters: int


def decode(raw: bytes) -> tuple[Command, int]:
    """Bytes from the events topic -> (event or command, reference version it needs)."""
    event = fast_event(raw)  # a valid event, the usual case: checked in one pass
    if event is not None:
        return event, 0
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnprocessableEvent(f"not JSON: {error}") from None
    if isinstance(data, dict) and data.get("type") in COMMAND_TYPES:
        kind = Reprice if data["type"] == REPRICE_COMMAND else Release
        try:
            command = decode_command(data)
        except (KeyError, ValueError, TypeError) as error:
            raise UnprocessableEvent(f"bad {kind.__name__.lower()} command: {error}") from None
        return (
            kind(command.event_id, command.hospital_id, command.case_id, command.occurred_at),
            command.reference_version,
        )
    try:
        return parse_event(data), 0
    except ValidationError as error:
        raise UnprocessableEvent(summary(field_errors(error))) from None


def settle_collector() -> None:
    """Set the process's garbage collector up for the batch path: what is alive now
    (modules, the app) is frozen out of its passes, and full passes are rare."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def state_bytes(state: CaseState) -> bytes:
    """A case state as the changelog and the table hold it (its array form, see
    services/casecost/state.py STATE_FIELDS; `state_data` reads it back).

    Copied out of orjson's buffer, which is sized for growth: the table keeps these for
    as long as the case is open, and 100,000 open cases of ~1 KB each held 880 MB of
    RSS in those buffers instead of 190 MB.
    """
    return bytes(memoryview(orjson.dumps(state.to_wire())))


class LiveStates:
    """The latest CaseState objects of recently changed cases, so that a busy case is not
    rebuilt from its JSON with every batch.

    An entry is used only while the table still holds the very bytes it was made from
    (recovery, or another worker's writes after a rebalance, replace them), and it is
    taken out while a batch changes it: a batch abandoned half-way leaves no entry, so
    the next one rebuilds the case from the table. Bounded; the least recently written
    go first.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._entries: OrderedDict[bytes, tuple[bytes, CaseState]] = OrderedDict()

    def take(self, key: bytes, stored: bytes | None) -> CaseState | None:
        entry = self._entries.pop(key, None)
        if entry is None or stored is None or entry[0] is not stored:
            return None
        return entry[1]

    def keep(self, key: bytes, stored: bytes, state: CaseState) -> None:
        if self._limit <= 0:
            return
        self._entries[key] = (stored, state)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)


async def apply_batch(
    messages: Sequence[Message],
    *,
    store: CaseStore,
    send: RecordSink,
    reference: PriceBookSource,
    live: LiveStates,
    topics: Topics,
    seal: EventSeal,
    gap_timeout: timedelta,
    now: datetime,
    on_durable: Callable[[Message], None],
) -> AppliedBatch:
    """Apply a fetched batch; the table changes only once the broker holds its effect."""
    states: dict[bytes, CaseState] = {}
    partition_of: dict[bytes, int] = {}
    unwritten_alerts: dict[bytes, int] = {}
    writes: list[Awaitable[Any]] = []
    alerts: list[tuple[bytes, dict[str, Any], float | None]] = []
    dead_letters = 0
    for message in messages:
        try:
            if not seal.verify(message.key, message.value, message.headers):
                EVENTS_UNSEALED.inc()
                raise UnprocessableEvent(NOT_FROM_LEDGER)
            event, needs_version = decode(message.value)
        except UnprocessableEvent as error:
            letter = encode_dead_letter(
                partition=message.partition,
                offset=message.offset,
                reason=error.message,
                payload=message.value,
            )
            writes.append(
                await send(topics.dead_letters, key=message.key or b"", value=letter, partition=0)
            )
            dead_letters += 1
            WORKER_DEAD_LETTERS.inc()
            # the reason stays in the dead letter: it may quote the record's content
            log.warning(
                "events record %d:%d not applied; sent to the dead-letter topic",
                message.partition,
                message.offset,
                extra=ids_of(message.value),
            )
            continue
        if needs_version > reference.price_book.version or not reference.loaded:
            await reference.refresh_until_done()
        key = case_key(event.hospital_id, event.case_id)
        state = states.get(key)
        if state is None:
            state = _current_state(key, event, store, live)
        if isinstance(event, Release):
            outcome = release_held(state, reference.price_book, now)
        else:
            outcome = receive(
                state,
                event,
                case_sequence(message.headers),
                reference.price_book,
                now,
                gap_timeout=gap_timeout,
            )
        if outcome.released:
            SEQUENCE_GAPS_RELEASED.inc(len(outcome.released))
            log.warning(
                "case %s: gave up waiting for ledger sequence %s after %s",
                key.decode(),
                ",".join(map(str, outcome.released)),
                gap_timeout,
                extra={
                    "hospital_id": event.hospital_id,
                    "case_id": event.case_id,
                    "case_key": key.decode(),
                },
            )
        alerts.extend((key, alert, message.timestamp) for alert in outcome.alerts)
        if not outcome.changed:
            continue
        states[key] = outcome.state
        partition_of[key] = message.partition
        if outcome.alerts:
            unwritten_alerts[key] = unwritten_alerts.get(key, 0) + len(outcome.alerts)
            if unwritten_alerts[key] >= MAX_ALERTS_KEPT // 2:
                # the state keeps only its latest alerts: write it before any drop out
                writes.append(
                    await send(
                        topics.changelog,
                        key=key,
                        value=state_bytes(outcome.state),
                        partition=message.partition,
                    )
                )
                unwritten_alerts[key] = 0
    values = {key: state_bytes(state) for key, state in states.items()}
    for key, value in values.items():
        writes.append(
            await send(topics.changelog, key=key, value=value, partition=partition_of[key])
        )
    await _delivered(writes)
    if values:  # each written partition ends with a one-record batch
        markers = [
            await send(topics.changelog, key=END_MARKER_KEY, value=None, partition=partition)
            for partition in set(partition_of.values())
        ]
        await _delivered(markers)
    store.update(values)
    for key, value in values.items():
        live.keep(key, value, states[key])
    for message in messages:  # offsets up to here may now be committed
        on_durable(message)
    for key, alert, received_at in alerts:
        await send(topics.alerts, key=key, value=orjson.dumps(alert), partition=None)
        count_alert(alert, received_at=received_at, raised_at=time.time())
    return AppliedBatch(len(messages), len(values), len(alerts), dead_letters)


def _current_state(key: bytes, event: Command, store: CaseStore, live: LiveStates) -> CaseState:
    """The case as the table holds it: the live object if still current, else decoded."""
    stored = store.get(key)
    state = live.take(key, stored)
    if state is not None:
        return state
    if stored:
        return CaseState.from_dict(state_data(stored))
    return new_case(event.hospital_id, event.case_id)


async def _delivered(writes: Iterable[Awaitable[Any]]) -> None:
    """Wait until the broker acknowledged every record (acks=all), or fail loudly."""
    pending = list(writes)
    if pending:
        await asyncio.gather(*pending)
