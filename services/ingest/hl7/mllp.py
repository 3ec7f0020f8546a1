"""The MLLP listener: HL7 v2 over TCP, each message framed as 0x0B message 0x1C 0x0D.

Every message of a frame goes through the same intake as POST /v1/hl7 (`intake.take`:
the ingest core, one unit of work per message) and is answered by one framed ACK, written
only after the message is durable (AA) or kept as a dead letter (AE/AR).

Framing (`Frames`, a plain class with no I/O):
- bytes outside a frame (before a start block, or between frames) are dropped and logged;
  whitespace there (a sender's stray newline) is ignored silently;
- a start block inside an open frame means the open frame was cut short: it is dropped
  (nothing recorded, no ACK: the sender resends it) and the new frame is read;
- a frame larger than `max_frame` is refused: an AR, then the connection is closed;
- a connection that closes, or stays silent for `frame_timeout` seconds, in the middle of
  a frame drops that half-sent frame: nothing of it is recorded or acknowledged.

When the database cannot make a message durable the connection is closed without an
ACK, so the sender keeps the message and sends it again (its events are idempotent).
The listener takes any hospital its profiles map, with no credential: in embedded mode
it listens on loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.exceptions import LedgerUnavailable
from services.ingest.hl7.acks import build_ack
from services.ingest.hl7.exceptions import Hl7Unreadable
from services.ingest.hl7.intake import count_answer, read_submission, take
from services.ingest.hl7.mapping import Problem
from services.ingest.hl7.profile import Profiles
from services.ingest.plausibility import TimeBounds
from services.ingest.publisher import EventPublisher, publish_durable
from services.metrics import HL7_MESSAGES
from services.reference.chargemaster.service import KeptChargeBook
from services.storage import dead_letters

log = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
MAX_FRAME = 5 * 1024 * 1024
DEFAULT_PORT = 2575


@dataclass(frozen=True, slots=True)
class FramingError:
    """Something on the wire that is not a whole frame; `fatal` closes the connection."""

    reason: str
    fatal: bool = False


@dataclass(slots=True)
class Frames:
    """Cuts a byte stream into MLLP frames (see the module docstring)."""

    max_frame: int = MAX_FRAME
    buffer: bytearray = field(default_factory=bytearray)
    open: bool = False

    def feed(self, data: bytes) -> list[bytes | FramingError]:
        """The whole frames (their content) and framing errors `data` completes."""
        self.buffer.extend(data)
        found: list[bytes | FramingError] = []
        while self.buffer:
            if not self.open:
                start = self.buffer.find(START_BLOCK)
                junk = bytes(self.buffer if start < 0 else self.buffer[:start])
                if junk.strip():
                    found.append(FramingError(f"{len(junk)} bytes outside a frame dropped"))
                if start < 0:
                    self.buffer.clear()
                    break
                del self.buffer[: start + 1]
                self.open = True
                continue
            end = self.buffer.find(END_BLOCK)
            restart = self.buffer.find(START_BLOCK)
            if restart >= 0 and (end < 0 or restart < end):
                found.append(FramingError("a frame cut short by the next start block dropped"))
                del self.buffer[:restart]
                self.open = False
                continue
            if end < 0:
                if len(self.buffer) > self.max_frame:
                    self.buffer.clear()
                    self.open = False
                    found.append(FramingError(f"a frame over {self.max_frame} bytes", fatal=True))
                break
            found.append(bytes(self.buffer[:end]))
            del self.buffer[: end + len(END_BLOCK)]
            self.open = False
        return found

    @property
    def pending(self) -> bool:
        """Whether a frame has started and not ended."""
        return self.open


@dataclass(frozen=True, slots=True)
class MllpIntake:
    """What the listener needs: where to record, how to read, where to publish."""

    sessions: async_sessionmaker[AsyncSession]
    profiles: Profiles
    zone: ZoneInfo
    bounds: TimeBounds
    charge_book: KeptChargeBook  # the API process's own: the listener runs beside it
    publisher: EventPublisher | None = None
    frame_timeout: float = 120.0
    max_frame: int = MAX_FRAME


async def start_mllp(
    intake: MllpIntake,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Listen for MLLP connections (on `sock` if given, else `host`:`port`)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _connection(intake, reader, writer)

    if sock is not None:
        return await asyncio.start_server(serve, sock=sock)
    return await asyncio.start_server(serve, host=host, port=port)


async def _connection(
    intake: MllpIntake, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    frames = Frames(intake.max_frame)
    peer = writer.get_extra_info("peername")
    try:
        while True:
            timeout = intake.frame_timeout if frames.pending else None
            try:
                data = await asyncio.wait_for(reader.read(64 * 1024), timeout)
            except TimeoutError:
                log.warning("MLLP %s: silent mid-frame; the half-sent frame is dropped", peer)
                return
            if not data:
                if frames.pending:
                    log.warning("MLLP %s: closed mid-frame; the half-sent frame is dropped", peer)
                return
            for item in frames.feed(data):
                if isinstance(item, FramingError):
                    log.warning("MLLP %s: %s", peer, item.reason)
                    if item.fatal:
                        await _answer(writer, [_refusal_ack(item.reason)], "utf-8")
                        return
                    continue
                try:
                    acks, charset = await answer_frame(intake, item)
                except (LedgerUnavailable, DBAPIError) as error:
                    log.warning("MLLP %s: not durable, closing without an ACK: %s", peer, error)
                    return
                await _answer(writer, acks, charset)
    except (ConnectionError, asyncio.IncompleteReadError) as error:
        log.info("MLLP %s: connection lost: %s", peer, error)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def _answer(writer: asyncio.StreamWriter, acks: list[str], charset: str) -> None:
    for ack in acks:
        writer.write(START_BLOCK + ack.encode(charset, "replace") + END_BLOCK)
    await writer.drain()


def _refusal_ack(reason: str) -> str:
    return build_ack(
        None, "AR", problems=[Problem(reason, None, 100)], notes=[], now=datetime.now(UTC)
    )


async def answer_frame(intake: MllpIntake, payload: bytes) -> tuple[list[str], str]:
    """The ACKs of one frame's messages, each once it is durable, and their charset."""
    now = datetime.now(UTC)
    async with intake.sessions() as db_session:
        charge_book = await intake.charge_book.current(db_session=db_session)
    try:
        submission, readings = read_submission(
            payload,
            declared_charset=None,
            profiles=intake.profiles,
            zone=intake.zone,
            charge_book=charge_book,
        )
    except Hl7Unreadable as error:
        async with intake.sessions() as db_session:
            db_session.add(
                dead_letters.dead_letter(
                    stage="ingest",
                    raw=payload.decode("utf-8", "replace"),
                    reason=f"HL7 AR: {error.message}",
                    errors=[{"field": "message", "reason": error.message}],
                    now=now,
                )
            )
            await db_session.commit()
        HL7_MESSAGES.labels(code="AR").inc()
        return [_refusal_ack(error.message)], "utf-8"
    acks = []
    for reading in readings:
        async with intake.sessions() as db_session:
            taken = await take(db_session, reading, now=now, bounds=intake.bounds)
        count_answer(taken)
        if intake.publisher is not None:
            await publish_durable(intake.publisher, taken.accepted)
        acks.append(taken.ack)
    return acks, submission.charset
