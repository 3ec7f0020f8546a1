"""MLLP framing: whole frames, split frames, junk, cut and oversized frames (no I/O)."""

from __future__ import annotations

from services.ingest.hl7.mllp import END_BLOCK, START_BLOCK, Frames, FramingError


def frame(text: bytes) -> bytes:
    return START_BLOCK + text + END_BLOCK


def test_whole_frames_in_one_read() -> None:
    frames = Frames()
    assert frames.feed(frame(b"MSH|1") + frame(b"MSH|2")) == [b"MSH|1", b"MSH|2"]
    assert not frames.pending


def test_a_frame_split_byte_by_byte() -> None:
    frames = Frames()
    found: list[bytes | FramingError] = []
    for byte in frame(b"MSH|^~\\&|A\rPV1|1"):
        found += frames.feed(bytes([byte]))
    assert found == [b"MSH|^~\\&|A\rPV1|1"]


def test_an_end_block_split_between_reads() -> None:
    frames = Frames()
    assert frames.feed(START_BLOCK + b"MSH|1\x1c") == []
    assert frames.pending
    assert frames.feed(b"\r") == [b"MSH|1"]


def test_whitespace_between_frames_is_ignored_and_junk_reported() -> None:
    frames = Frames()
    assert frames.feed(b"\r\n" + frame(b"A") + b"\n") == [b"A"]
    found = frames.feed(b"garbage" + frame(b"B"))
    assert found[0] == FramingError("7 bytes outside a frame dropped")
    assert found[1:] == [b"B"]


def test_a_frame_cut_short_by_the_next_start_is_dropped() -> None:
    frames = Frames()
    found = frames.feed(START_BLOCK + b"MSH|half" + frame(b"MSH|whole"))
    assert found == [
        FramingError("a frame cut short by the next start block dropped"),
        b"MSH|whole",
    ]


def test_a_half_sent_frame_stays_pending() -> None:
    frames = Frames()
    assert frames.feed(START_BLOCK + b"MSH|half") == []
    assert frames.pending


def test_a_frame_over_the_limit_is_fatal() -> None:
    frames = Frames(max_frame=10)
    found = frames.feed(START_BLOCK + b"x" * 11)
    assert found == [FramingError("a frame over 10 bytes", fatal=True)]
