"""Faust's aiokafka transport, with two changes the worker depends on.

A shorter fetch wait. Faust fixes the consumer's `fetch_max_wait_ms` at 1500. A broker
that does not answer a long poll early when records arrive (the embedded tansu broker,
seen here) then holds every idle partition's events for up to 1.5 s; a short wait
keeps the 202-to-state time well under a second at the cost of a few more fetch
requests while idle.

Every event delivered, and committed only once applied. During a rebalance Faust's
stream skips the events it takes from its buffer and acknowledges them, to be read
again after the seek to the committed offsets. Two things then lost them, seen here as
charges of a case never applied after a worker restart (found by the SIGKILL test):
its commit bookkeeping could commit past them, and records fetched before the seek,
still being handed out after it, moved Faust's "read offset" past the re-read ones,
which it then dropped as already seen. So this consumer

- caps every commit at the first offset of each partition that the agent has not yet
  applied and written to the changelog (the agent reports them with `mark_durable`):
  an event is never committed unapplied;
- drops nothing as already read: an event delivered twice is refused as a duplicate
  inside the case state, which is cheap; an event dropped is a charge lost.

Events a fetched batch at a time. Faust hands every record to its stream on its own:
two tasks and an `asyncio.wait` per record in the fetch loop, a queue, an `Event`, the
acknowledgement bookkeeping; on this machine about 300 microseconds a record, most of a
plain agent's time. For a topic registered with `deliver_in_batches` the fetch loop
instead passes each fetched batch, in offset order per partition, to one handler, and
the topic's commits follow `mark_durable` alone. Every other topic (the changelog
during table recovery, say) takes Faust's own path.

Everything here that reaches below Faust's and aiokafka's public API is named in
`PRIVATE_NAMES`, and the worker touches Faust's internals only through this module; a
test checks every entry against the installed versions (and the fetch loop followed
here against Faust's own, by `FAUST_FETCH_LOOP_SHA256`), so an upgrade that renames or
changes one fails loudly instead of quietly changing how offsets are committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 50
BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PrivateName:
    """A name below a library's public API that this module depends on.

    `owner` is "module:Class", or "module" for a function of the module; `use` says how:
    a method overridden here, a class attribute or method read or called, or an attribute
    its instances carry.
    """

    owner: str
    name: str
    use: Literal["overridden", "called", "read", "instance attribute"]
    why: str


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    PrivateName(
        "faust.transport.consumer:Consumer",
        "_drain_messages",
        "overridden",
        "the fetch loop, followed as Faust has it (FAUST_FETCH_LOOP_SHA256) but batching",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "_filter_committable_offsets",
        "overridden",
        "commits capped at what is durable",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "_filter_tps_with_pending_acks",
        "overridden",
        "batched partitions count as having acknowledgements to commit",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "perform_seek",
        "overridden",
        "the durable offsets restart at the committed ones",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "on_partitions_revoked",
        "overridden",
        "revoked partitions are forgotten",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer", "_should_commit", "called", "Faust's commit check"
    ),
    PrivateName(
        "faust.transport.drivers.aiokafka:Consumer",
        "_new_consumer_thread",
        "overridden",
        "our consumer thread (shorter fetch wait)",
    ),
    PrivateName(
        "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread",
        "highwaters",
        "overridden",
        "the end offsets recovery reads to, confirmed by a fetch",
    ),
    PrivateName(
        "faust.transport.drivers.aiokafka", "server_list", "called", "the broker addresses"
    ),
    PrivateName(
        "faust.transport.drivers.aiokafka",
        "credentials_to_aiokafka_auth",
        "called",
        "the broker credentials, as Faust's consumer has them",
    ),
    PrivateName(
        "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread",
        "_create_worker_consumer",
        "overridden",
        "sets aiokafka's fetch wait",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "_read_offset",
        "instance attribute",
        "replaced by ReadOffsets",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "_committed_offset",
        "instance attribute",
        "read after a seek",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "_acked",
        "instance attribute",
        "read: partitions with acknowledgements",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "_stopped",
        "instance attribute",
        "read by the fetch loop (mode's Service)",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "diag",
        "instance attribute",
        "the fetching flag the fetch loop sets",
    ),
    PrivateName(
        "faust.transport.consumer:Consumer",
        "suspend_flow",
        "instance attribute",
        "the fetch loop waits on it for Faust's own topics",
    ),
    PrivateName(
        "aiokafka.consumer.consumer:AIOKafkaConsumer",
        "_fetch_max_wait_ms",
        "instance attribute",
        "assigned before start: the long-poll wait",
    ),
    PrivateName(
        "faust.tables.recovery:Recovery",
        "completed",
        "instance attribute",
        "read: table recovery has finished (readiness)",
    ),
    PrivateName(
        "faust.stores.rocksdb:Store",
        "_db_for_partition",
        "called",
        "the RocksDB database of a changelog partition, opened if need be (casestore.py)",
    ),
    PrivateName(
        "faust.stores.rocksdb:Store",
        "_dbs",
        "instance attribute",
        "read: the partitions' open RocksDB databases (casestore.py)",
    ),
)
# sha256 of the source of faust.transport.consumer.Consumer._drain_messages that
# `_Consumer._drain_messages` follows (faust-streaming 0.15.3)
FAUST_FETCH_LOOP_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by aiokafka at start()
        return consumer

    async def highwaters(self, *partitions: Any) -> Mapping[Any, int]:
        """The end offsets, each confirmed by a fetch (see `confirmed_ends`): what table
        recovery reads the changelog up to, and holds a table's own offsets against."""
        ends = await super().highwaters(*partitions)
        transport: Any = self.transport
        conf = self.app.conf
        client = {  # the broker, and how to reach it, as for the worker's own consumer
            "bootstrap_servers": faust_aiokafka.server_list(transport.url, transport.default_port),
            "client_id": conf.broker_client_id,
            **faust_aiokafka.credentials_to_aiokafka_auth(
                conf.broker_credentials, conf.ssl_context
            ),
        }
        confirmed: Mapping[Any, int] = await self.call_thread(
            confirmed_ends, client, ends, conf.broker_request_timeout
        )
        return confirmed


async def confirmed_ends(
    client: Mapping[str, Any], ends: Mapping[Any, int | None], timeout: float
) -> dict[Any, int | None]:
    """`ends` (a partition's end offset as ListOffsets answered it), raised to the high
    watermark a fetch of the partition's last batch reports.

    The embedded tansu broker answers ListOffsets with one past the first offset of a
    partition's last record batch, not of its last record (seen here: a batch at 6-8
    gave an end of 7). Table recovery read only that far, losing the states of the rest
    of that batch, and a worker whose table had written the batch itself stopped at its
    next rebalance ("persisted offset ... higher than the last offset in that topic").
    A fetch from the reported end less one answers with the true high watermark; on a
    broker that answers ListOffsets right this confirms the same end.
    """
    from aiokafka import AIOKafkaConsumer

    asked = {tp: end for tp, end in ends.items() if end}
    if not asked:
        return dict(ends)
    reader = AIOKafkaConsumer(
        **client,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        max_partition_fetch_bytes=64 * 1024,
    )
    await reader.start()
    try:
        reader.assign(list(asked))
        for tp, end in asked.items():
            reader.seek(tp, end - 1)
        found: dict[Any, int] = {}
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < len(asked):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            batches = await reader.getmany(timeout_ms=min(int(left * 1000), 200))
            for tp, records in batches.items():
                if records:
                    found[tp] = max(found.get(tp, 0), records[-1].offset + 1)
            for tp in asked:
                high = reader.highwater(tp)
                if high is not None and tp not in found:
                    found[tp] = high
                elif high is not None:
                    found[tp] = max(found[tp], high)
    finally:
        await reader.stop()
    return {tp: max(end, found.get(tp, 0)) if end else end for tp, end in ends.items()}


class DurableOffsets:
    """Per partition: the first offset not yet applied and durable, from the seek point."""

    def __init__(self) -> None:
        self._next: dict[Any, int | None] = {}  # None: no committed offset, start unknown
        self._ahead: dict[Any, set[int]] = {}

    def reset(self, positions: Mapping[Any, int | None]) -> None:
        """After a seek: each partition restarts at its committed offset."""
        self._next = dict(positions)
        self._ahead = {tp: set() for tp in positions}

    def forget(self, tps: Iterable[Any]) -> None:
        for tp in tps:
            self._next.pop(tp, None)
            self._ahead.pop(tp, None)

    def mark(self, tp: Any, offset: int) -> None:
        if tp not in self._next:
            return  # not assigned here (any more): its new owner applies it again
        following = self._next[tp]
        if following is None or offset == following:
            following = offset + 1
            ahead = self._ahead[tp]
            while following in ahead:
                ahead.discard(following)
                following += 1
            self._next[tp] = following
        elif offset > following:
            self._ahead[tp].add(offset)

    def following(self, tp: Any) -> int | None:
        """The first offset of `tp` not yet applied and durable (None: unknown)."""
        return self._next.get(tp)

    def cap(self, tp: Any, offset: int) -> int | None:
        """The highest commit allowed for `offset`; None when nothing may be committed."""
        following = self._next.get(tp)
        return None if following is None else min(offset, following)


class ReadOffsets(dict[Any, Any]):
    """Faust's read offsets, not consulted for the agent's input topics.

    Faust's fetch loop drops a record whose offset is below its partition's read offset
    (and treats a jump past it as an "offset gap" that it acknowledges itself). For the
    topics streams acknowledge (the events) every record is let through; changelog
    records keep Faust's rule, since table recovery must not apply a state twice.
    """

    def __init__(self, acks_enabled_for: Callable[[str], bool]) -> None:
        super().__init__()
        self._acks_enabled_for = acks_enabled_for

    def __getitem__(self, tp: Any) -> Any:
        if self._acks_enabled_for(tp.topic):
            return None
        return self.get(tp)


class _Consumer(faust_aiokafka.Consumer):
    durable: DurableOffsets

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.durable = DurableOffsets()
        self._read_offset = ReadOffsets(self.app.topics.acks_enabled_for)
        self.batch_handlers: dict[str, BatchHandler] = _batch_handlers(self.app)

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop, handing batch topics' records over a fetch at a time."""
        handlers = self.batch_handlers
        if not handlers:
            await super()._drain_messages(fetcher)
            return
        callback = self.callback
        getmany = self.getmany
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        set_read_offset = self._read_offset.__setitem__
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batches: dict[str, list[Any]] = {}
                await asyncio.sleep(0)
                if not self.should_stop:
                    async for tp, message in getmany(timeout=1.0):
                        if tp.topic in handlers:
                            batches.setdefault(tp.topic, []).append(message)
                            continue
                        # Faust's own path, as in Consumer._drain_messages
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, message.offset)
                    self.diag.unset_flag(CONSUMER_FETCHING)
                for topic, messages in batches.items():
                    await handlers[topic](messages)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def mark_durable(self, tp: Any, offset: int) -> None:
        """The agent applied the event at `offset` and the broker holds its effect."""
        self.durable.mark(tp, offset)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        committed = self._committed_offset
        self.durable.reset({tp: committed.get(tp) for tp in self.assignment()})

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await super().on_partitions_revoked(revoked)
        self.durable.forget(revoked)

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[Any]:
        yield from super()._filter_tps_with_pending_acks(topics)
        for tp in self.assignment():
            wanted = topics is None or tp in topics or tp.topic in topics
            if wanted and tp.topic in self.batch_handlers and tp not in self._acked:
                yield tp

    def _filter_committable_offsets(self, tps: Iterable[Any]) -> dict[Any, int]:
        allowed = {}
        batched = [tp for tp in tps if tp.topic in self.batch_handlers]
        streamed = [tp for tp in tps if tp.topic not in self.batch_handlers]
        for tp, offset in super()._filter_committable_offsets(streamed).items():
            capped = self.durable.cap(tp, offset)
            if capped is not None and self._should_commit(tp, capped):
                allowed[tp] = capped
        for tp in batched:  # no Faust acknowledgements: what is durable is committable
            following = self.durable.following(tp)
            if following is not None and self._should_commit(tp, following):
                allowed[tp] = following
        return allowed


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def install(app: Any) -> None:
    """Use this transport for the app's consumer (before the app starts)."""
    app.transport = Transport(app.conf.broker_consumer, app)


def _batch_handlers(app: Any) -> dict[str, BatchHandler]:
    handlers: dict[str, BatchHandler] = app.__dict__.setdefault("_drgwatch_batch_handlers", {})
    return handlers


def deliver_in_batches(app: Any, topic: Any, handler: BatchHandler) -> None:
    """Subscribe to `topic` and hand its records to `handler` a fetched batch at a time.

    The handler gets transport messages (key, value, headers, tp, offset) in offset
    order per partition, and must call `mark_durable` for each one it has applied and
    made durable; nothing else commits them.
    """
    app.topics.add(topic)
    for name in topic.topics:
        _batch_handlers(app)[name] = handler


def record_sender(app: Any) -> Any:
    """A coroutine that hands one record to the app's producer, as bytes.

    Its result resolves on the broker's acknowledgement. Faust's `Topic.send` costs over
    a millisecond per record in serializers and sensors, most of a batch's time here.
    """

    async def send(
        topic: str, *, key: bytes | None, value: bytes | None, partition: int | None
    ) -> Awaitable[Any]:
        pending: Awaitable[Any] = await app.producer.send(topic, key, value, partition, None, None)
        return pending

    return send


def recovered(app: Any) -> bool:
    """True once the app's tables have recovered from their changelogs."""
    return bool(app.tables.recovery.completed.is_set())


def partition_dbs(store: Any) -> Mapping[int, Any]:
    """A Faust RocksDB store's open databases, by changelog partition."""
    return store._dbs  # type: ignore[no-any-return]


def partition_db(store: Any, partition: int) -> Any:
    """A Faust RocksDB store's database of one changelog partition, opened if need be."""
    return store._db_for_partition(partition)


def mark_durable(app: Any, tp: Any, offset: int) -> None:
    """Report an applied, durable event to the app's consumer (a no-op without ours)."""
    consumer = app.consumer
    if isinstance(consumer, _Consumer):
        consumer.mark_durable(tp, offset)


def lags(app: Any, topic: str) -> dict[int, int]:
    """Records of `topic` not yet applied, per partition the worker holds: the end offset
    the last fetch saw minus the first offset not yet durable (a partition with either
    still unknown is left out)."""
    consumer = app.consumer
    if not isinstance(consumer, _Consumer):
        return {}
    found = {}
    for tp in consumer.assignment():
        if tp.topic != topic:
            continue
        end = consumer.highwater(tp)
        following = consumer.durable.following(tp)
        if end is None or following is None:
            continue
        found[tp.partition] = max(0, end - following)
    return found
