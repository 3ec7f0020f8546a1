"""The Faust worker: keeps every case's running cost in a changelog-backed table.

The consumer hands each fetched batch of the events topic to `apply_batch` (batch.py),
which folds the events into the cases with the pure core and writes each changed case
to the table's changelog. The changelog is the single source of truth: the projector
(projector.py) reads it into the database, so whatever state the table holds is what
the API shows, and a SIGKILLed worker resumes from the changelog without losing or
doubling a charge. This module only wires those parts to Faust and the broker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import traceback
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NoReturn

import faust
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.alerting import heap, projector, rulewatch, targetwatch, transport
from services.alerting.batch import (
    LiveStates,
    Message,
    RecordSink,
    Topics,
    apply_batch,
    settle_collector,
)
from services.alerting.casestore import CaseTable, MemoryCases, RocksCases, claim_directory
from services.alerting.settings import WorkerSettings, worker_tables_dir
from services.casecost.pricing import PriceBook
from services.casecost.rules import NO_SWITCHES, CaseRules, RuleSet, RuleSwitches
from services.casecost.state import state_data, waits_on_gap
from services.metrics import EVENTS_APPLIED, show_consumer_lag
from services.reference import registry
from services.reference import service as catalogue_service
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files
from services.storage import schema
from services.storage.engine import make_engine, session_factory
from services.storage.seal import load_seal
from services.wire import (
    RELEASE_COMMAND,
    REPRICE_COMMAND,
    Command,
    EventSeal,
    encode_command,
    new_command,
)

log = logging.getLogger(__name__)

# per changelog partition's RocksDB database: Faust's defaults (a 2 GB block cache and up
# to three 64 MB write buffers each) would let eight partitions take gigabytes. A case
# state is about a kilobyte (snappy makes 100,000 of them 16 MB on disk); most cases a
# batch reads are among those the worker keeps decoded (DRGWATCH_LIVE_STATES), and a
# block read again comes from the page cache. So at most 8 MB a partition: a 2 MB write
# buffer (two while one is flushed) and a 4 MB block cache.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 2 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 * 1024 * 1024,
}

# the worker's malloc arenas (heap.py): the event loop's thread and one shared by the
# consumer's, the producer's and RocksDB's threads
MALLOC_ARENAS = 2
# how often the free pages of the malloc arenas go back to the system (heap.py)
HEAP_TRIM_SECONDS = 5.0


@dataclass
class ReferenceData:
    """The price book in use, reloaded when the database's reference version moves, with
    the case rules in force compiled into it (`use_rules`): the rule registry's, less
    their switches, read again when the registry's generation moves (`reload_rules`)."""

    sessions: async_sessionmaker[AsyncSession]
    zone: tzinfo | None = None  # the hospitals' time zone (the product's default if None)
    price_book: PriceBook = field(default_factory=PriceBook)
    loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    rules: RuleSet = field(default_factory=RuleSet)
    switches: RuleSwitches = NO_SWITCHES
    # the rule registry's generation the rules were read at (None: not read yet)
    rules_generation: int | None = None

    def use_rules(self, rules: RuleSet, switches: RuleSwitches = NO_SWITCHES) -> None:
        """Evaluate these rules, less those switched off, from the next batch on (compiled
        in the price book's zone)."""
        self.rules = rules
        self.switches = switches
        self.price_book = self._with_rules(self.price_book)

    def _with_rules(self, book: PriceBook) -> PriceBook:
        compiled = CaseRules.compile(self.rules, book.zone, self.switches)
        return replace(book, case_rules=compiled if compiled.rules else None)

    async def import_rule_files(self, rules: RuleSet) -> None:
        """Import the rule files into the registry, then evaluate the registry's rules."""
        await registry.import_at_start(self.sessions, rules, changed_by="rule files (worker start)")
        await self.reload_rules()

    async def reload_rules(self) -> bool:
        """Evaluate the registry's rules if it changed since they were read; True if so."""
        async with self.lock:
            async with self.sessions() as db_session:
                generation = await registry.registry_generation(db_session=db_session)
                if generation == self.rules_generation:
                    return False
                in_force = await registry.rules_in_force(db_session=db_session)
            self.use_rules(in_force.rule_set, in_force.switches)
            self.rules_generation = in_force.generation
        log.info(
            "rules of registry generation %d in force (%d rules)",
            in_force.generation,
            len(in_force.rule_set.rules),
        )
        return True

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
                self.price_book = self._with_rules(
                    await catalogue_service.load_price_book(db_session=db_session, zone=self.zone)
                )
            changed = self.loaded
            self.loaded = True
            log.info(
                "price book version %d loaded (%d catalogues)",
                self.price_book.version,
                len(self.price_book.catalogues),
            )
            return changed


@dataclass
class SealSource:
    """The events topic's seal, its key read from the database once (at start, or by the
    first batch or command that needs it, waiting out a database outage)."""

    sessions: async_sessionmaker[AsyncSession]
    seal: EventSeal | None = None

    async def get(self) -> EventSeal:
        delay = 0.5
        while self.seal is None:
            try:
                self.seal = await load_seal(self.sessions)
            except (SQLAlchemyError, OSError) as error:
                log.warning("seal key not readable (%s); retrying", type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return self.seal


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
    """The worker's parts, wired by `create_worker`; `deliver` is what the consumer calls."""

    app: faust.App
    settings: WorkerSettings
    events: Any  # the events topic
    cases: Any  # the Faust table: case key -> the case state as changelog JSON (bytes)
    case_table: CaseTable  # its store, as the batch path and the timers read and write it
    reference: ReferenceData
    live: LiveStates
    topics: Topics
    send: RecordSink
    progress: Progress
    projector: ProjectorService
    seal: SealSource

    @property
    def gap_timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.sequence_gap_seconds)

    def case_state(self, key: bytes) -> dict[str, Any] | None:
        """A case's state as plain data, as the table holds it."""
        stored = self.case_table.get(key)
        return None if stored is None else state_data(stored)

    async def deliver(self, messages: Sequence[Message]) -> None:
        """Apply a fetched batch of the events topic (see batch.apply_batch).

        Every event is acknowledged (marked durable, hence committable) only after the
        changelog record holding its effect, or its dead letter, is on the broker; one
        acknowledged write per case per batch replaces a broker round trip per event.
        """
        progress = self.progress
        if not progress.first_batch_at:
            progress.first_batch_at = time.time()
        self.case_table.begin_batch()
        try:
            await apply_batch(
                messages,
                store=self.case_table,
                send=self.send,
                reference=self.reference,
                live=self.live,
                topics=self.topics,
                seal=self.seal.seal or await self.seal.get(),
                gap_timeout=self.gap_timeout,
                now=datetime.now(UTC),
                on_durable=self._mark_durable,
            )
        except Exception as error:  # noqa: BLE001 - see fatal()
            fatal(error)
        progress.applied += len(messages)
        EVENTS_APPLIED.inc(len(messages))
        progress.batches += 1

    def _mark_durable(self, message: Message) -> None:
        transport.mark_durable(self.app, message.tp, message.offset)

    async def send_command(self, key: bytes, command: Command) -> None:
        """Send the worker a command for the case `key` through the events topic, sealed
        like an event."""
        seal = await self.seal.get()
        value = encode_command(command)
        await self.events.send(key=key, value=value, headers=seal.headers(key, value, None))

    async def reprice_if_reference_changed(self) -> None:
        """New catalogue or thresholds: price this worker's open and unpriced cases again,
        through the events topic so that each runs in a batch like any event."""
        try:
            changed = await self.reference.refresh()
        except (SQLAlchemyError, OSError) as error:
            log.warning("reference data not readable (%s)", type(error).__name__)
            return
        if not changed:
            return
        version = self.reference.price_book.version
        for key, stored in self.case_table.items():
            state = state_data(stored) if stored else None
            if state is None or (state.get("discharged_at") and state["level"] != "unpriced"):
                continue
            command = new_command(
                REPRICE_COMMAND,
                state["hospital_id"],
                state["case_id"],
                f"reprice-{version}",
                reference_version=version,
            )
            await self.send_command(key, command)

    async def release_stale_gaps(self) -> None:
        """A case waiting for a ledger sequence number that never comes (a ledger entry
        lost in a restore, say) is released after the gap timeout, in a batch."""
        cutoff = datetime.now(UTC) - self.gap_timeout
        for key, stored in self.case_table.items():
            if not stored or not waits_on_gap(stored):  # no wait: no need to decode
                continue
            state = state_data(stored)
            held_since = state.get("held_since")
            if held_since and datetime.fromisoformat(held_since) <= cutoff:
                command = new_command(
                    RELEASE_COMMAND,
                    state["hospital_id"],
                    state["case_id"],
                    f"release-{held_since}",
                )
                await self.send_command(key, command)


async def _run_watch(watch: str, raised_what: str, sweep: Awaitable[int]) -> None:
    """A watch's pass as the worker's timer runs it: a database that cannot answer is tried
    again at the next tick."""
    try:
        raised = await sweep
    except (SQLAlchemyError, OSError) as error:
        log.warning("%s skipped (%s)", watch, type(error).__name__)
        return
    if raised:
        log.info("%s raised %d %s", watch, raised, raised_what)


def create_worker(settings: WorkerSettings) -> WorkerApp:
    """Build the Faust app: the events topic delivered in batches to `apply_batch`, the
    cases table, the projector, and the timers (reference reload, gap release, heartbeat)."""
    if settings.worker_store == "rocksdb":
        # a directory no other running worker of this app holds (casestore.py); apps of
        # other topic prefixes sharing the data directory have their own tables
        store = "rocksdb://"
        datadir = claim_directory(worker_tables_dir(settings.data_dir) / settings.worker_app_id)
    else:
        store, datadir = "memory://", worker_tables_dir(settings.data_dir)
        datadir.mkdir(parents=True, exist_ok=True)  # Faust makes its directories in it
    app = faust.App(
        settings.worker_app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store=store,
        datadir=str(datadir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_every=settings.commit_every,
        broker_commit_interval=settings.commit_interval,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        # a fetch hands over at most this many records, so a backlog is applied a bounded
        # batch at a time rather than every prefetched record at once
        broker_max_poll_records=settings.batch_max_events,
        web_enabled=settings.web_enabled,
        web_bind="127.0.0.1" if settings.mode == "embedded" else "0.0.0.0",
        web_port=settings.web_port,
        table_cleanup_interval=3600.0,
        producer_acks=-1,
        producer_max_batch_size=settings.producer_batch_bytes,  # see WorkerSettings
    )
    transport.install(app)
    if settings.web_enabled:
        from faust.sensors.prometheus import setup_prometheus_sensors

        setup_prometheus_sensors(app, name_prefix="drgwatch_worker")
    engine: AsyncEngine = make_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    events = app.topic(
        settings.events_topic,
        key_type=bytes,
        value_type=bytes,  # bytes types: the "raw" codec for keys and values
        partitions=settings.topic_partitions,
    )
    cases = app.Table(
        # keys "hospital/case", values the state's JSON as bytes: kept as written and as
        # recovered (no decoding of every state on recovery), decoded when a batch needs it
        "cases",
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        options=ROCKSDB_OPTIONS if settings.worker_store == "rocksdb" else None,
    )
    changelog = cases.changelog_topic.get_topic_name()
    case_table: CaseTable
    if settings.worker_store == "rocksdb":
        case_table = RocksCases(cases.data, changelog, recent=settings.live_states)
    else:
        case_table = MemoryCases(cases.data)
    worker = WorkerApp(
        app=app,
        settings=settings,
        events=events,
        cases=cases,
        case_table=case_table,
        reference=ReferenceData(sessions, settings.zone),
        live=LiveStates(settings.live_states),
        topics=Topics(
            changelog=changelog,
            alerts=settings.alerts_topic,
            dead_letters=settings.dead_letter_topic,
        ),
        send=case_table.tap(transport.record_sender(app)),
        progress=Progress(),
        projector=ProjectorService(settings, engine, sessions),
        seal=SealSource(sessions),
    )
    # the rule files are read before anything starts: a file refused stops the worker here,
    # naming the file, rule and field, rather than running without its rules; once the
    # database is there they are imported into the rule registry, whose rules are in force
    file_rules = load_rule_files(settings.rules_dir or DEFAULT_RULES_DIR)
    worker.reference.use_rules(file_rules)
    # the only way the events reach the worker: a fetched batch at a time (transport.py)
    transport.deliver_in_batches(app, events, worker.deliver)

    @app.task
    async def _prepare() -> None:
        while True:
            try:
                await schema.prepare(engine, mode=settings.mode)
                break
            except (SQLAlchemyError, OSError) as error:
                log.warning("database not reachable yet (%s); retrying", type(error).__name__)
                await asyncio.sleep(1)
        await worker.seal.get()
        await worker.reference.refresh_until_done()
        while True:
            try:
                await worker.reference.import_rule_files(file_rules)
                break
            except (SQLAlchemyError, OSError) as error:
                log.warning("rule registry not readable (%s); retrying", type(error).__name__)
                await asyncio.sleep(1)

    @app.timer(settings.reference_poll_seconds)
    async def _reload_reference() -> None:
        await worker.reprice_if_reference_changed()
        # the rules follow the registry's generation: one cheap read per poll
        if worker.reference.rules_generation is not None:
            try:
                await worker.reference.reload_rules()
            except (SQLAlchemyError, OSError) as error:
                log.warning("rule registry not readable (%s)", type(error).__name__)

    @app.timer(settings.sequence_gap_check_seconds)
    async def _release_stale_gaps() -> None:
        await worker.release_stale_gaps()

    @app.timer(settings.target_check_seconds)
    async def _watch_targets() -> None:
        if worker.reference.loaded:
            await _run_watch(
                "target watch",
                "department alerts",
                targetwatch.sweep(
                    engine,
                    sessions,
                    worker.reference.price_book,
                    settings.zone,
                    datetime.now(UTC),
                    settings.target_watch_rules,
                ),
            )

    @app.timer(settings.rule_check_seconds)
    async def _watch_rules() -> None:
        if worker.reference.loaded:
            await _run_watch(
                "rule watch",
                "department rule alerts",
                rulewatch.sweep(
                    engine,
                    sessions,
                    worker.reference.rules.department_rules,
                    settings.zone,
                    datetime.now(UTC),
                    worker.reference.switches,
                ),
            )

    @app.timer(HEAP_TRIM_SECONDS)
    async def _release_free_memory() -> None:
        # in a thread: a trim walks every arena (milliseconds), the loop carries on
        await asyncio.to_thread(heap.release_free_memory)

    worker_id = f"{socket.gethostname()}:{os.getpid()}"

    @app.timer(settings.heartbeat_seconds)
    async def _heartbeat() -> None:
        assignment = app.consumer.assignment()
        ready = not app.rebalancing and transport.recovered(app) and bool(assignment)
        await projector.beat(
            sessions, engine, worker_id=worker_id, ready=ready, partitions=len(assignment)
        )
        show_consumer_lag(transport.lags(app, settings.events_topic))

    return worker


def run(worker_app: WorkerApp, loglevel: str = "WARNING") -> None:
    """Run the worker until it is stopped (as `drgwatch worker` does)."""
    from services.alerting.stopping import BoundedWorker

    heap.limit_arenas(MALLOC_ARENAS)  # before the consumer's and RocksDB's threads start
    settings = worker_app.settings
    worker = BoundedWorker(
        worker_app.app,
        worker_app.projector,
        loglevel=loglevel,
        quiet=True,
        stop_within=settings.shutdown_seconds,
        log_format=settings.resolved_log_format,
    )
    # Faust's terminal spinner sets the root logger to DEBUG so that it can spin on
    # every record: every library's debug call on the hot path then builds a record
    # (about 4% of the worker's time). Logs go to the handlers at `loglevel` only.
    worker.spinner = None
    settle_collector()
    worker.execute_from_commandline()
