"""The events topic's seal: what the ledger's publisher adds and the worker checks."""

from __future__ import annotations

import pytest

from services.wire import CASE_SEQUENCE_HEADER, SEAL_HEADER, EventSeal

SEAL = EventSeal(bytes(range(32)))
KEY = b"H1/C1"
VALUE = b'{"event_id":"c1","type":"charge","amount":"100.00"}'


def test_the_right_seal_is_accepted_with_and_without_a_sequence_number() -> None:
    sealed = SEAL.headers(KEY, VALUE, 7)
    assert sealed[0] == (CASE_SEQUENCE_HEADER, b"7")
    assert sealed[1][0] == SEAL_HEADER and len(sealed[1][1]) == 64
    assert SEAL.verify(KEY, VALUE, sealed)
    assert SEAL.verify(KEY, VALUE, dict(sealed))  # headers as a mapping (Faust's events)
    assert SEAL.verify(KEY, VALUE, SEAL.headers(KEY, VALUE, None))  # a command: no number
    # the same key read from the database again seals alike
    assert EventSeal(bytes(range(32))).verify(KEY, VALUE, sealed)


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        (KEY, VALUE, []),
        (KEY, VALUE, None),
        (KEY, VALUE, [(CASE_SEQUENCE_HEADER, b"7")]),
        (KEY, VALUE, [(CASE_SEQUENCE_HEADER, b"7"), (SEAL_HEADER, b"")]),
        (KEY, VALUE, [(CASE_SEQUENCE_HEADER, b"7"), (SEAL_HEADER, "not bytes")]),
        (KEY, VALUE.replace(b"100.00", b"900.00"), SEAL.headers(KEY, VALUE, 7)),
        (b"H1/C2", VALUE, SEAL.headers(KEY, VALUE, 7)),
        (None, VALUE, SEAL.headers(KEY, VALUE, 7)),
        (KEY, VALUE, EventSeal(b"\x01" * 32).headers(KEY, VALUE, 7)),
        (KEY, VALUE, EventSeal(bytes(range(1, 33))).headers(KEY, VALUE, 7)),
        (KEY, VALUE, [(CASE_SEQUENCE_HEADER, b"8"), SEAL.headers(KEY, VALUE, 7)[1]]),
        (KEY, VALUE, [(CASE_SEQUENCE_HEADER, b"07"), SEAL.headers(KEY, VALUE, 7)[1]]),
        (KEY, VALUE, [SEAL.headers(KEY, VALUE, 7)[1]]),  # its number taken away
        (KEY, VALUE, [(CASE_SEQUENCE_HEADER, b"1"), *SEAL.headers(KEY, VALUE, None)]),
        (
            KEY,
            VALUE,
            [(CASE_SEQUENCE_HEADER, b"7"), (SEAL_HEADER, SEAL.seal(KEY, VALUE, b"7").upper())],
        ),
    ],
    ids=[
        "no headers",
        "headers none",
        "no seal",
        "empty seal",
        "seal not bytes",
        "changed value",
        "changed record key",
        "no record key",
        "another seal key",
        "a near seal key",
        "changed sequence",
        "sequence padded",
        "sequence removed",
        "sequence added",
        "seal in capitals",
    ],
)
def test_a_missing_or_wrong_seal_is_refused(
    key: bytes | None, value: bytes, headers: list[tuple[str, object]] | None
) -> None:
    assert not SEAL.verify(key, value, headers)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        EventSeal(b"short")
