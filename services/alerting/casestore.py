"""The cases table as the worker reads and writes it: case key -> the state's JSON.

The table's store is Faust's: in memory, rebuilt at every start from the whole changelog,
or RocksDB (`DRGWATCH_WORKER_STORE=rocksdb`), kept on disk with the changelog offset
each partition's store holds, so that a restart reads only the changelog written since.

The batch path (batch.py) writes the changelog itself rather than through Faust's table,
so Faust never learns which partition a state belongs to nor which offset its store has
reached. `RocksCases` learns both from the records the batch sends (`tap`): each state
goes into the store of the partition its record went to, in one RocksDB write with the
offset of the partition's last record, so that the store and its offset never disagree
on disk (a worker killed between two batches resumes from the offset it holds).

Each running worker has a directory of its own under the data directory
(`claim_directory`): two workers on one machine never share a store, and a worker
started again takes the directory its killed predecessor left.
"""

from __future__ import annotations

import fcntl
import os
from collections import OrderedDict
from collections.abc import Awaitable, Iterator, Mapping
from itertools import count
from pathlib import Path
from typing import Any, Protocol

from rocksdict import ReadOptions, WriteBatch

from services.alerting import transport
from services.alerting.batch import RecordSink


class CaseTable(Protocol):
    """What the worker needs of its cases table (batch.CaseStore, and iteration)."""

    def get(self, key: bytes, /) -> bytes | None: ...
    def update(self, values: Mapping[bytes, bytes], /) -> None: ...
    def items(self) -> Iterator[tuple[bytes, bytes]]: ...
    def tap(self, send: RecordSink) -> RecordSink: ...
    def begin_batch(self) -> None: ...


class MemoryCases:
    """The in-memory store, used as it is: a dict the table's recovery fills."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def get(self, key: bytes, /) -> bytes | None:
        return self._store.get(key)  # type: ignore[no-any-return]

    def update(self, values: Mapping[bytes, bytes], /) -> None:
        self._store.update(values)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self._store.items()))

    def tap(self, send: RecordSink) -> RecordSink:
        return send

    def begin_batch(self) -> None:
        pass


class RocksCases:
    """Faust's RocksDB store (one database per changelog partition), written per partition
    with the offset reached.

    A state read back from RocksDB is a new bytes object each time; the batch path keeps
    decoded states only while the store holds the very object they were made from
    (batch.LiveStates), so the last `recent` states written are handed out again as the
    same objects as long as the store holds equal bytes.
    """

    def __init__(self, store: Any, changelog: str, *, recent: int) -> None:
        self._store = store
        self._changelog = changelog
        self._recent_limit = recent
        self._recent: OrderedDict[bytes, bytes] = OrderedDict()
        # each case's partition, once known (what Faust's store looks up in every
        # partition's database, as it cannot tell outside an event)
        self._partition_of: dict[bytes, int] = {}
        # the changelog records of the batch in hand: (partition, key, acknowledgement)
        self._sent: list[tuple[int, bytes | None, Awaitable[Any]]] = []

    def tap(self, send: RecordSink) -> RecordSink:
        """`send`, noting the partition and the acknowledgement of each changelog record."""
        changelog = self._changelog
        sent = self._sent

        async def send_noted(
            topic: str, *, key: bytes | None, value: bytes | None, partition: int | None
        ) -> Awaitable[Any]:
            pending = await send(topic, key=key, value=value, partition=partition)
            if topic == changelog and partition is not None:
                sent.append((partition, key, pending))
            return pending

        return send_noted

    def begin_batch(self) -> None:
        """Forget the records of a batch abandoned half-way (its states were not stored)."""
        self._sent.clear()

    def get(self, key: bytes, /) -> bytes | None:
        dbs = transport.partition_dbs(self._store)
        partition = self._partition_of.get(key)
        db = None if partition is None else dbs.get(partition)
        value: bytes | None = None
        if db is not None:  # a case lives in one partition, the one its events have
            value = db.get(key)
        else:  # a case not seen yet (or recovered), found by the bloom filters
            for partition, db in dbs.items():
                value = db.get(key)
                if value is not None:
                    self._partition_of[key] = partition
                    break
        if value is None:
            return None
        recent = self._recent.get(key)
        return recent if recent == value else value

    def update(self, values: Mapping[bytes, bytes], /) -> None:
        """Store the batch's states, each in its record's partition, with the offset of
        each partition's last acknowledged record."""
        partition_of: dict[bytes, int] = {}
        offsets: dict[int, int] = {}
        for partition, key, pending in self._sent:
            if key is not None:
                partition_of[key] = partition
            metadata = _result(pending)
            if metadata is not None:
                offsets[partition] = max(offsets.get(partition, -1), metadata.offset)
        self._sent.clear()
        batches: dict[int, WriteBatch] = {}
        for key, value in values.items():
            partition = partition_of[key]  # the batch sent every state it stores
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = WriteBatch(raw_mode=True)
            batch.put(key, value)
            self._partition_of[key] = partition
            self._keep_recent(key, value)
        held = transport.partition_dbs(self._store)
        for partition, offset in offsets.items():
            if partition not in held:
                # revoked while the batch was in flight: its new owner may have written
                # records before these; the states alone are safe (a recovery from the
                # older offset ends with each key's last record), an offset past the
                # new owner's records would not be
                continue
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = WriteBatch(raw_mode=True)
            batch.put(self._store.offset_key, str(offset).encode())
        for partition, batch in batches.items():
            transport.partition_db(self._store, partition).write(batch)

    def put(self, key: bytes, value: bytes, *, partition: int) -> None:
        """Store one state in a partition's store, outside a batch (no offset moves)."""
        transport.partition_db(self._store, partition).put(key, value)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every state of the partitions this worker holds (as the in-memory store has
        them: active and standby), a partition at a time.

        The caller awaits between items: no database is referenced meanwhile, so one
        revoked in a rebalance is closed and can be opened again if it comes back. The
        scan (every gap check's) leaves the block caches to the batches' reads: filled
        by it, they would soon hold every state of the table."""
        offset_key = self._store.offset_key
        scan = ReadOptions()
        scan.fill_cache(False)  # type: ignore[call-arg]  # rocksdict's stub omits the flag
        dbs = transport.partition_dbs(self._store)
        for partition in list(dbs):
            db = dbs.get(partition)
            if db is None:
                continue
            states = [(key, value) for key, value in db.items(read_opt=scan) if key != offset_key]
            del db
            yield from states

    def _keep_recent(self, key: bytes, value: bytes) -> None:
        if self._recent_limit <= 0:
            return
        self._recent[key] = value
        self._recent.move_to_end(key)
        while len(self._recent) > self._recent_limit:
            self._recent.popitem(last=False)


def _result(pending: Awaitable[Any]) -> Any:
    """The broker's answer to a record (its RecordMetadata), if it came and says where."""
    done = getattr(pending, "done", None)
    if done is None or not done() or pending.cancelled() or pending.exception():  # type: ignore[attr-defined]
        return None
    metadata = pending.result()  # type: ignore[attr-defined]
    return metadata if hasattr(metadata, "offset") else None


def claim_directory(root: Path) -> Path:
    """A directory under `root` that no other running worker holds, held by this process
    until it exits (an flock, released by the kernel however the process ends): the
    first free one, so a worker started again after a kill takes its predecessor's."""
    root.mkdir(parents=True, exist_ok=True)
    for slot in count():
        path = root / f"worker-{slot}"
        path.mkdir(exist_ok=True)
        descriptor = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        return path  # the descriptor stays open: the lock lasts as long as the process
    raise AssertionError("unreachable")
