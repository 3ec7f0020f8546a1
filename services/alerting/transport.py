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
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 50
BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by aiokafka at start()
        return consumer


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


def mark_durable(app: Any, tp: Any, offset: int) -> None:
    """Report an applied, durable event to the app's consumer (a no-op without ours)."""
    consumer = app.consumer
    if isinstance(consumer, _Consumer):
        consumer.mark_durable(tp, offset)
