"""The Faust worker: keeps every case's running cost in a changelog-backed table.

The agent decodes each event, hands it to `apply_event` and stores the new state.
The table's changelog is the single source of truth: the projector (projector.py)
reads it into the database, so whatever state the table holds is what the API shows,
and a SIGKILLed worker resumes from the changelog without losing or doubling a charge.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import traceback
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, cast

import faust
import orjson
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.alerting import projector, transport
from services.alerting.settings import WorkerSettings
from services.casecost.apply import Release, Reprice, new_case, receive, release_held
from services.casecost.events import Event, parse_event
from services.casecost.pricing import PriceBook
from services.casecost.state import MAX_ALERTS_KEPT, CaseState
from services.metrics import SEQUENCE_GAPS_RELEASED
from services.reference import service as catalogue_service
from services.storage import schema
from services.storage.engine import make_engine, session_factory
from services.wire import CASE_SEQUENCE_HEADER

log = logging.getLogger(__name__)
# A tombstone written alone after each batch's changelog records, per partition: a
# broker that reports end offsets per record batch (tansu) then reports the true end,
# and table recovery reads every state. Recovery deletes the key; readers skip it.
END_MARKER_KEY = b"\x00drgwatch-end"
REPRICE_TYPE = "_reprice"
RELEASE_TYPE = "_release"
Command = Event | Reprice | Release


class UnprocessableEvent(Exception):
    """A message on the events topic that is not a valid event."""


@dataclass
class ReferenceData:
    """The price book in use, reloaded when the database's reference version moves."""

    sessions: async_sessionmaker[AsyncSession]
    price_book: PriceBook = field(default_factory=PriceBook)
    loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refresh_until_done(self) -> None:
        """Load the reference data, waiting out a database outage (pricing needs it)."""
        delay = 0.5
        while True:
            try:
                await self.refresh()
                return
            except (SQLAlchemyError, OSError) as error:
                log.warning("reference data not readable (%s); retrying", type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def refresh(self) -> bool:
        """Reload if the database has newer reference data; True if it changed."""
        async with self.lock:
            async with self.sessions() as db_session:
                version = await catalogue_service.reference_version(db_session=db_session)
                if self.loaded and version <= self.price_book.version:
                    return False
                self.price_book = await catalogue_service.load_price_book(db_session=db_session)
            changed = self.loaded
            self.loaded = True
            log.info(
                "price book version %d loaded (%d catalogues)",
                self.price_book.version,
                len(self.price_book.catalogues),
            )
            return changed


def decode(raw: bytes) -> tuple[Command, int]:
    """Bytes from the events topic -> (event or command, reference version it needs)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnprocessableEvent(f"not JSON: {error}") from None
    if isinstance(data, dict) and data.get("type") in (REPRICE_TYPE, RELEASE_TYPE):
        kind = Reprice if data["type"] == REPRICE_TYPE else Release
        try:
            return (
                kind(
                    event_id=str(data["event_id"]),
                    hospital_id=str(data["hospital_id"]),
                    case_id=str(data["case_id"]),
                    occurred_at=datetime.fromisoformat(data["occurred_at"]),
                ),
                int(data.get("reference_version", 0)),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise UnprocessableEvent(f"bad {kind.__name__.lower()} command: {error}") from None
    try:
        return parse_event(data), 0
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise UnprocessableEvent(reasons) from None


def state_bytes(state: CaseState) -> bytes:
    """A case state as the changelog and the table hold it.

    Copied out of orjson's buffer, which is sized for growth: the table keeps these for
    as long as the case is open, and 100,000 open cases of ~1 KB each held 880 MB of
    RSS in those buffers instead of 190 MB.
    """
    return bytes(memoryview(orjson.dumps(state.to_dict())))


def case_sequence(headers: Any) -> int | None:
    """The per-case ledger sequence number ingest put in the message headers, if any."""
    if isinstance(headers, dict):
        raw = headers.get(CASE_SEQUENCE_HEADER)
    else:  # the transport's (name, value) pairs
        raw = None
        for name, value in headers or ():
            if name == CASE_SEQUENCE_HEADER:
                raw = value
                break
    if isinstance(raw, bytes) and raw.isdigit():
        return int(raw)
    return None


def command_message(kind: str, state: dict[str, Any], event_id: str, **extra: Any) -> bytes:
    """An internal command for one case, sent through the events topic like an event."""
    return orjson.dumps(
        {
            "type": kind,
            "event_id": event_id,
            "hospital_id": state["hospital_id"],
            "case_id": state["case_id"],
            "occurred_at": datetime.now(UTC).isoformat(),
            **extra,
        }
    )


async def _send(
    app: faust.App, topic: str, *, key: bytes, value: bytes | None, partition: int | None
) -> Awaitable[Any]:
    """Hand a record to the producer; the result resolves on the broker's acknowledgement.

    The bytes go straight to the app's producer: Faust's `Topic.send` costs over a
    millisecond per record in serializers and sensors, most of a batch's time here.
    """
    pending: Awaitable[Any] = await app.producer.send(topic, key, value, partition, None, None)
    return pending


async def _wait_delivered(writes: list[Awaitable[Any]]) -> None:
    """Wait until the broker acknowledged every record (acks=all), or fail loudly."""
    if writes:
        await asyncio.gather(*writes)


def fatal(error: BaseException) -> NoReturn:
    """Stop the process at once, without acknowledging the batch in hand.

    An exception leaving the agent would let Faust acknowledge the batch's events (its
    take buffer acknowledges them on the way out) although their changelog records
    may not be on the broker; exiting without cleanup leaves them unacknowledged, and
    the worker that takes the partitions over applies them again from the changelog.
    """
    # the type and the stack, not the message: a validation message quotes its input
    stack = "".join(traceback.format_tb(error.__traceback__))
    log.critical(
        "cannot apply a batch (%s), exiting without acknowledging it\n%s",
        type(error).__name__,
        stack,
    )
    logging.shutdown()
    os._exit(70)


@dataclass
class Progress:
    """Events the agent has finished with (acknowledged or about to be)."""

    applied: int = 0
    batches: int = 0
    first_batch_at: float = 0.0  # wall clock, when the first batch arrived


class ProjectorService(faust.Service):
    """Runs the projector beside the app from the start (app tasks wait for recovery)."""

    def __init__(
        self,
        settings: WorkerSettings,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        super().__init__()
        self._run = (settings, engine, sessions)

    async def on_start(self) -> None:
        self.add_future(projector.run(*self._run))


@dataclass(frozen=True)
class WorkerApp:
    app: faust.App
    agent: Any  # for records that reach a Faust stream
    deliver: Callable[[Sequence[Any]], Awaitable[None]]  # the consumer's batches
    cases: Any  # the table: case key -> the case state as changelog JSON (bytes)
    reference: ReferenceData
    progress: Progress
    projector: ProjectorService

    def case_state(self, key: bytes) -> dict[str, Any] | None:
        """A case's state as plain data, as the table holds it."""
        stored = self.cases.data.get(key)
        return None if stored is None else cast(dict[str, Any], orjson.loads(stored))


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
        self._entries[key] = (stored, state)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)


def create_worker(settings: WorkerSettings) -> WorkerApp:
    """Build the Faust app: the events agent, the cases table, projector and heartbeat."""
    stack = settings
    app = faust.App(
        stack.worker_app_id,
        broker=[f"kafka://{host}" for host in stack.kafka_bootstrap.split(",")],
        store="memory://",
        topic_partitions=stack.topic_partitions,
        topic_replication_factor=stack.topic_replication,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_every=settings.commit_every,
        broker_commit_interval=settings.commit_interval,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        web_enabled=settings.web_enabled,
        web_bind="127.0.0.1" if stack.mode == "embedded" else "0.0.0.0",
        web_port=settings.web_port,
        table_cleanup_interval=3600.0,
        producer_acks=-1,
        producer_max_batch_size=settings.producer_batch_bytes,  # see WorkerSettings
    )
    transport.install(app)
    if settings.web_enabled:
        from faust.sensors.prometheus import setup_prometheus_sensors

        setup_prometheus_sensors(app, name_prefix="drgwatch_worker")
    engine: AsyncEngine = make_engine(stack.resolved_database_url)
    sessions = session_factory(engine)
    reference = ReferenceData(sessions)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    gap_timeout = timedelta(seconds=settings.sequence_gap_seconds)
    progress = Progress()

    events = app.topic(
        stack.events_topic,
        key_type=bytes,
        value_type=bytes,  # bytes types: the "raw" codec for keys and values
        partitions=stack.topic_partitions,
    )
    alerts_topic, dead_letter_topic = stack.alerts_topic, stack.dead_letter_topic
    cases = app.Table(
        # keys "hospital/case", values the state's JSON as bytes: kept as written and as
        # recovered (no decoding of every state on recovery), decoded when a batch needs it
        "cases",
        default=None,
        key_type=bytes,
        value_type=bytes,  # bytes types: the "raw" codec for keys and values
        partitions=stack.topic_partitions,
    )
    live = LiveStates(settings.live_states)
    changelog_topic = cases.changelog_topic.get_topic_name()

    async def on_events(messages: Sequence[Any]) -> None:
        # Every event is acknowledged (marked durable, hence committable) only after the
        # changelog record holding its effect, or its dead letter, is on the broker; one
        # acknowledged write per case per batch replaces a broker round trip per event.
        if not progress.first_batch_at:
            progress.first_batch_at = time.time()
        try:
            await apply_batch(messages)
        except Exception as error:  # noqa: BLE001 - see fatal()
            fatal(error)
        progress.applied += len(messages)
        progress.batches += 1

    # the events arrive a fetched batch at a time, straight from the consumer (see
    # transport.py); the agent below applies the same way whatever reaches a stream
    transport.deliver_in_batches(app, events, on_events)

    @app.agent(events)
    async def apply_events(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.batch_max_events, settings.batch_seconds
        )
        async for batch in batches:
            await on_events([event.message for event in batch])

    async def apply_batch(batch: Sequence[Any]) -> None:
        """Apply transport messages; the table changes only once the broker holds them.

        If the batch is abandoned half-way (a rebalance cancels it, a send fails) the
        table is as it was, and the events, not yet acknowledged, are applied again.
        """
        states: dict[bytes, CaseState] = {}
        partition_of: dict[bytes, int] = {}
        unwritten_alerts: dict[bytes, int] = {}
        writes: list[Awaitable[Any]] = []
        alerts: list[tuple[bytes, dict[str, Any]]] = []
        now = datetime.now(UTC)
        for message in batch:
            key: bytes = message.key or b""
            try:
                event, needs_version = decode(message.value)
            except UnprocessableEvent as error:
                letter = {
                    "source": f"{message.partition}:{message.offset}",
                    "reason": str(error),
                    "payload": message.value.decode("utf-8", "replace"),
                }
                writes.append(
                    await _send(
                        app, dead_letter_topic, key=key, value=orjson.dumps(letter), partition=0
                    )
                )
                continue
            if needs_version > reference.price_book.version or not reference.loaded:
                await reference.refresh_until_done()
            case_key = f"{event.hospital_id}/{event.case_id}".encode()
            state = states.get(case_key)
            if state is None:
                stored = cases.data.get(case_key)
                state = live.take(case_key, stored)
                if state is None:
                    state = (
                        CaseState.from_dict(orjson.loads(stored))
                        if stored
                        else new_case(event.hospital_id, event.case_id)
                    )
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
                    case_key.decode(),
                    ",".join(map(str, outcome.released)),
                    gap_timeout,
                )
            alerts.extend((case_key, alert) for alert in outcome.alerts)
            if not outcome.changed:
                continue
            states[case_key] = outcome.state
            partition_of[case_key] = message.partition
            if outcome.alerts:
                unwritten_alerts[case_key] = unwritten_alerts.get(case_key, 0) + 1
                if unwritten_alerts[case_key] >= MAX_ALERTS_KEPT // 2:
                    # the state keeps only its latest alerts: write it before any drop out
                    writes.append(await send_state(case_key, outcome.state, partition_of))
                    unwritten_alerts[case_key] = 0
        values = {case_key: state_bytes(state) for case_key, state in states.items()}
        for case_key, value in values.items():
            writes.append(
                await _send(
                    app,
                    changelog_topic,
                    key=case_key,
                    value=value,
                    partition=partition_of[case_key],
                )
            )
        await _wait_delivered(writes)
        if values:  # each written partition ends with a one-record batch (END_MARKER_KEY)
            markers = [
                await _send(app, changelog_topic, key=END_MARKER_KEY, value=None, partition=p)
                for p in set(partition_of.values())
            ]
            await _wait_delivered(markers)
        cases.data.update(values)
        for case_key, value in values.items():
            live.keep(case_key, value, states[case_key])
        for message in batch:  # offsets up to here may now be committed
            transport.mark_durable(app, message.tp, message.offset)
        for case_key, alert in alerts:
            await _send(app, alerts_topic, key=case_key, value=orjson.dumps(alert), partition=None)

    async def send_state(
        case_key: bytes, state: CaseState, partition_of: dict[bytes, int]
    ) -> Awaitable[Any]:
        """Send a case's changelog record now (the table takes it with the batch)."""
        return await _send(
            app,
            changelog_topic,
            key=case_key,
            value=orjson.dumps(state.to_dict()),
            partition=partition_of[case_key],
        )

    @app.task
    async def _prepare() -> None:
        while True:
            try:
                await schema.prepare(engine, mode=stack.mode)
                break
            except (SQLAlchemyError, OSError) as error:
                log.warning("database not reachable yet (%s); retrying", type(error).__name__)
                await asyncio.sleep(1)
        await reference.refresh_until_done()

    @app.timer(settings.reference_poll_seconds)
    async def _reload_reference() -> None:
        try:
            changed = await reference.refresh()
        except (SQLAlchemyError, OSError) as error:
            log.warning("reference data not readable (%s)", type(error).__name__)
            return
        if not changed:
            return
        # New catalogue or thresholds: price this worker's open and unpriced cases again,
        # through the events topic so that each runs inside the agent like any event.
        version = reference.price_book.version
        for case_key, stored in list(cases.data.items()):
            state = orjson.loads(stored) if stored else None
            if state is None or (state.get("discharged_at") and state["level"] != "unpriced"):
                continue
            await events.send(
                key=case_key,
                value=command_message(
                    REPRICE_TYPE, state, f"reprice-{version}", reference_version=version
                ),
            )

    @app.timer(settings.sequence_gap_check_seconds)
    async def _release_stale_gaps() -> None:
        # A case waiting for a ledger sequence number that never comes (a ledger entry
        # lost in a restore, say) is released after the gap timeout, inside the agent.
        cutoff = datetime.now(UTC) - gap_timeout
        for case_key, stored in list(cases.data.items()):
            if not stored or b'"held_since":null' in stored:  # no wait: no need to decode
                continue
            state = orjson.loads(stored)
            held_since = state.get("held_since")
            if held_since and datetime.fromisoformat(held_since) <= cutoff:
                await events.send(
                    key=case_key,
                    value=command_message(RELEASE_TYPE, state, f"release-{held_since}"),
                )

    @app.timer(settings.heartbeat_seconds)
    async def _heartbeat() -> None:
        ready = (
            not app.rebalancing
            and app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
            and bool(app.consumer.assignment())
        )
        await projector.beat(
            sessions,
            engine,
            worker_id=worker_id,
            ready=ready,
            partitions=len(app.consumer.assignment()),
        )

    return WorkerApp(
        app=app,
        agent=apply_events,
        deliver=on_events,
        cases=cases,
        reference=reference,
        progress=progress,
        projector=ProjectorService(settings, engine, sessions),
    )


def run(worker_app: WorkerApp, loglevel: str = "WARNING") -> None:
    """Run the worker until it is stopped (as `drgwatch worker` does)."""
    from faust.worker import Worker

    worker = Worker(worker_app.app, worker_app.projector, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG so that it can spin on
    # every record: every library's debug call on the hot path then builds a record
    # (about 4% of the worker's time). Logs go to the handlers at `loglevel` only.
    worker.spinner = None
    worker.execute_from_commandline()
