"""The seal key in the database, and the ledger's publisher sealing what it relays."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from services.ingest import publisher as publisher_module
from services.ingest.publisher import EventPublisher, relay_once
from services.storage.seal import load_seal, seal_key
from services.wire import CASE_SEQUENCE_HEADER, SEAL_HEADER, EventSeal
from tests.api.conftest import Api
from tests.api.helpers import admitted, charge


class RecordingBatch:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, **record: Any) -> object:
        self.records.append(record)
        return object()


class RecordingProducer:
    """Stands in for AIOKafkaProducer: keeps what is sent, acknowledges at once."""

    sent: list[dict[str, Any]]

    def __init__(self, **_config: Any) -> None:
        self.sent = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def partitions_for(self, _topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def create_batch(self) -> RecordingBatch:
        return RecordingBatch()

    async def send_batch(
        self, batch: RecordingBatch, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        self.sent.extend({"topic": topic, "partition": partition, **r} for r in batch.records)
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged


async def test_the_migration_made_one_key_that_every_reader_gets(api: Api) -> None:
    rows = await api.rows("SELECT id, key FROM ingest_seal")
    assert [row.id for row in rows] == [1] and len(bytes(rows[0].key)) == 32
    async with api.sessions() as db_session:
        assert await seal_key(db_session=db_session) == bytes(rows[0].key)
    seal = await load_seal(api.sessions)
    assert seal.verify(b"k", b"v", EventSeal(bytes(rows[0].key)).headers(b"k", b"v", 1))


async def test_a_database_without_its_key_gets_one_on_first_use_the_same_for_all(
    api: Api,
) -> None:
    before = await api.scalar("SELECT key FROM ingest_seal")
    async with api.engine.begin() as connection:
        await connection.execute(text("DELETE FROM ingest_seal"))
    seals = await asyncio.gather(*(load_seal(api.sessions) for _ in range(4)))
    key = bytes(await api.scalar("SELECT key FROM ingest_seal"))
    assert key != bytes(before) and len(key) == 32
    assert await api.scalar("SELECT count(*) FROM ingest_seal") == 1
    sealed = EventSeal(key).headers(b"k", b"v", None)
    assert all(seal.verify(b"k", b"v", sealed) for seal in seals)


async def test_the_relay_seals_every_event_with_the_databases_key(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the app runs without a broker here: the events stay unpublished in the ledger
    events = [admitted("a-1", case_id="C7"), charge("c-1", case_id="C7"), charge("c-2")]
    response = await api.client.post("/v1/events", json={"events": events})
    assert response.status_code == 202, response.text
    monkeypatch.setattr(publisher_module, "AIOKafkaProducer", RecordingProducer)
    publisher = EventPublisher("127.0.0.1:1", "drgwatch-test-events")
    await publisher.start(await load_seal(api.sessions))
    producer = publisher._producer  # noqa: SLF001 - the recorder put in its place
    assert isinstance(producer, RecordingProducer)

    assert await relay_once(api.sessions, publisher, timedelta(0)) == 3

    key = bytes(await api.scalar("SELECT key FROM ingest_seal"))
    database_seal = EventSeal(key)
    assert [orjson.loads(record["value"])["event_id"] for record in producer.sent] == [
        "a-1",
        "c-1",
        "c-2",
    ]
    for record in producer.sent:
        headers = dict(record["headers"])
        assert set(headers) == {CASE_SEQUENCE_HEADER, SEAL_HEADER}
        assert database_seal.verify(record["key"], record["value"], record["headers"])
    assert [dict(r["headers"])[CASE_SEQUENCE_HEADER] for r in producer.sent] == [b"1", b"2", b"1"]
    assert await api.scalar("SELECT count(*) FROM ingest_ledger WHERE NOT published") == 0
    # a seal made with another key is not the database's
    other = EventSeal(b"\x07" * 32)
    record = producer.sent[0]
    assert not other.verify(record["key"], record["value"], record["headers"])
