"""The MLLP listener on a real TCP socket, recording into the real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import orjson
import pytest

from services.ingest.hl7.mllp import END_BLOCK, START_BLOCK, MllpIntake, start_mllp
from services.ingest.hl7.profile import load_profiles
from services.ingest.plausibility import TimeBounds
from tests.api.conftest import Api
from tests.api.test_hl7 import (
    ASPIRIN,
    GAUZE,
    SAMPLE_STENT,
    STENT,
    acks,
    dft,
    ft1,
    store_sample_chargemaster,
)

DEADLINE = 10.0


@dataclass
class Listener:
    port: int
    api: Api

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def listener(api: Api) -> AsyncIterator[Listener]:
    intake = MllpIntake(
        sessions=api.sessions,
        profiles=load_profiles(),
        zone=ZoneInfo("Asia/Shanghai"),
        bounds=TimeBounds(),
        charge_book=api.app.state.charge_book,
        frame_timeout=1.0,
    )
    server = await start_mllp(intake, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Listener(port, api)
    finally:
        server.close()
        await server.wait_closed()


def framed(text: str) -> bytes:
    return START_BLOCK + text.encode() + END_BLOCK


async def read_ack(reader: asyncio.StreamReader) -> str:
    data = await asyncio.wait_for(reader.readuntil(END_BLOCK), DEADLINE)
    assert data.startswith(START_BLOCK)
    return data[1 : -len(END_BLOCK)].decode()


async def ledger_ids(api: Api) -> list[str]:
    rows = await api.rows("SELECT payload FROM ingest_ledger ORDER BY seq")
    return [orjson.loads(row.payload)["event_id"] for row in rows]


async def test_a_framed_message_is_acknowledged_once_durable(listener: Listener) -> None:
    reader, writer = await listener.connect()
    writer.write(framed(dft("L-1", STENT, ASPIRIN)))
    await writer.drain()
    [ack] = acks(await read_ack(reader))
    assert (ack["code"], ack["control_id"]) == ("AA", "L-1")
    # the ACK went out after the commit: the events are there
    assert await ledger_ids(listener.api) == ["T-STENT", "T-ASP"]
    writer.close()


async def test_an_item_the_profile_leaves_uncategorised_takes_the_chargemasters_category(
    listener: Listener,
) -> None:
    await store_sample_chargemaster(listener.api)
    reader, writer = await listener.connect()
    writer.write(framed(dft("L-CM", SAMPLE_STENT, GAUZE)))
    await writer.drain()
    [ack] = acks(await read_ack(reader))
    assert ack["code"] == "AA"
    assert [(e["location"], e["severity"]) for e in ack["errors"]] == [("FT1^2^7^1^1", "W")]
    rows = await listener.api.rows("SELECT payload FROM ingest_ledger ORDER BY seq")
    categories = [orjson.loads(row.payload)["category"] for row in rows]
    assert categories == ["consumable", "other"]
    writer.close()


async def test_messages_split_and_joined_across_reads_get_one_ack_each(listener: Listener) -> None:
    reader, writer = await listener.connect()
    stream = b"\n" + framed(dft("L-2", STENT)) + framed(dft("L-3", ASPIRIN))
    for start in range(0, len(stream), 7):  # in pieces that cut frames anywhere
        writer.write(stream[start : start + 7])
        await writer.drain()
    answers = [acks(await read_ack(reader))[0] for _ in range(2)]
    assert [(a["control_id"], a["code"]) for a in answers] == [("L-2", "AA"), ("L-3", "AA")]
    writer.close()


async def test_a_half_sent_frame_records_nothing_and_gets_no_ack(listener: Listener) -> None:
    reader, writer = await listener.connect()
    whole = framed(dft("L-4", STENT))
    writer.write(whole[: len(whole) // 2])
    await writer.drain()
    writer.close()
    assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
    # and a silent one is dropped after the frame timeout
    reader, writer = await listener.connect()
    writer.write(whole[:-1])
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
    assert await ledger_ids(listener.api) == []
    # the sender sends it again: taken
    reader, writer = await listener.connect()
    writer.write(whole)
    await writer.drain()
    assert acks(await read_ack(reader))[0]["code"] == "AA"
    assert await ledger_ids(listener.api) == ["T-STENT"]
    writer.close()


async def test_a_frame_cut_by_the_next_is_dropped_and_the_next_answered(
    listener: Listener,
) -> None:
    reader, writer = await listener.connect()
    cut = framed(dft("L-5", STENT))[:40]
    writer.write(cut + framed(dft("L-6", ASPIRIN)))
    await writer.drain()
    [ack] = acks(await read_ack(reader))
    assert (ack["control_id"], ack["code"]) == ("L-6", "AA")
    assert await ledger_ids(listener.api) == ["T-ASP"]
    writer.close()


async def test_refused_messages_get_ae_or_ar_and_are_kept(listener: Listener) -> None:
    reader, writer = await listener.connect()
    bad = dft("L-7", ft1(1, "T-X", "HC01^Stent^CONS", "1", "abc", ""))
    writer.write(framed(bad) + framed("not HL7 at all"))
    await writer.drain()
    first, second = acks(await read_ack(reader)), acks(await read_ack(reader))
    assert (first[0]["code"], first[0]["errors"][0]["location"]) == ("AE", "FT1^1^11^1^1")
    assert second[0]["code"] == "AR"
    assert "before any MSH" in second[0]["errors"][0]["reason"]
    reasons = [row.reason for row in await listener.api.rows("SELECT reason FROM dead_letters")]
    assert sorted(reason[:6] for reason in reasons) == ["HL7 AE", "HL7 AR"]
    assert await ledger_ids(listener.api) == []
    writer.close()
