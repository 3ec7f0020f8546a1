"""The worker's fast decoding: what `fast_event` accepts, parse_event accepts as the same
event; everything else is left to parse_event (None), which says why."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import core_schema

from services.casecost.events import Event, _fast_schema, event_to_wire, fast_event, parse_event
from tests.unit.test_events import VALID, charge


def full(raw: dict[str, Any]) -> Event | None:
    try:
        return parse_event(raw)
    except ValidationError:
        return None


def assert_same(fast: Event, slow: Event | None) -> None:
    """Equal in everything the core and the wire can see: class, values with their
    exponents and offsets, the fields given."""
    assert slow is not None, "fast_event accepted what parse_event refuses"
    assert type(fast) is type(slow) and fast == slow and hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert event_to_wire(fast) == event_to_wire(slow)
    assert fast.model_fields_set == slow.model_fields_set


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_valid_example_takes_the_fast_path(name: str) -> None:
    raw, model = VALID[name]
    event = fast_event(orjson.dumps(raw))
    assert event is not None and type(event) is model
    assert_same(event, parse_event(raw))


def test_a_discharge_cancellation_with_its_reason_takes_the_fast_path() -> None:
    raw = {**VALID["discharged"][0], "type": "discharge_cancelled", "reason": "wrong patient"}
    del raw["discharged_at"]
    event = fast_event(orjson.dumps(raw))
    assert event is not None
    assert_same(event, parse_event(raw))


def test_a_fast_event_is_frozen_like_any_other() -> None:
    event = fast_event(orjson.dumps(charge()))
    with pytest.raises(ValidationError):
        event.amount = 0  # type: ignore[union-attr,misc]


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 2501.0},  # a JSON number for money
        {"quantity": 2.0},
        {"amount": "2501.01"},  # not quantity x unit_price
        {"amount": "-2501.00"},
        {"unit_price": "1250.50001"},  # five places
        {"unit_price": "1250.50000"},
        {"amount": "2501.000"},  # equal to quantity x unit_price, but three places
        {"amount": "2.501E+3"},
        {"unit_price": "9" * 11, "amount": "1.00"},  # above the limit
        {"quantity": "0"},
        {"quantity": "100001"},
        {"occurred_at": "2026-11-23T08:15:00"},  # no offset
        {"occurred_at": "1999-12-31T08:15:00+08:00"},
        {"occurred_at": "2101-01-01T08:15:00+08:00"},
        {"occurred_at": 1764000000},  # epoch seconds
        {"occurred_at": " 2026-11-23T08:15:00+08:00"},
        {"item_name": "Stent\u202egnp.exe"},
        {"item_name": "a\nb"},
        {"category": "stent"},
        {"event_id": "H 1"},
        {"department": "A" * 33},
        {"reverses_event_id": "e-0"},  # a credit's field on a charge
        {"type": "_reprice"},
    ],
)
def test_what_the_contract_refuses_is_left_to_parse_event(changes: dict[str, Any]) -> None:
    raw = charge(**changes)
    assert full(raw) is None
    assert fast_event(orjson.dumps(raw)) is None


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"null", b'{"type": "charge"}', b""])
def test_what_is_not_an_event_is_left_to_parse_event(raw: bytes) -> None:
    assert fast_event(raw) is None


@pytest.mark.parametrize(
    "changes",
    [{"quantity": 2}, {"unit_price": " 1250.50 "}, {"amount": "2501"}, {"quantity": "2.0000"}],
)
def test_what_only_parse_event_converts_is_the_same_event_either_way(
    changes: dict[str, Any],
) -> None:
    raw = charge(**changes)
    slow = full(raw)
    assert slow is not None
    fast = fast_event(orjson.dumps(raw))
    if fast is not None:
        assert_same(fast, slow)


TRICKY_TEXT = st.sampled_from(
    [
        "0", "1", "2", "2.0", "2.00", "1250.50", "1250.5", "1250.50000", "2501.00", "2501.000",
        "2501", "0.01", "00.10",
        "1000000000", "1000000000.00", "1000000000.01", "100000", "100000.0001", "-0", "+1",
        "1e3", "1E+3", " 2 ", "\t2", "NaN", "", " ", "2026-11-23T08:15:00+08:00",
        "2026-11-23T08:15:00Z", "2026-11-23T08:15:00", "2026-11-23", "2100-12-31T23:59:59+14:00",
        "1999-12-31T23:59:59+00:00", "20261123T081500+0800", "CARD", "card ", " H1", "H/1",
        "药物", "Stent\u200b", "a\tb", "x" * 201, "e-0",
    ]
)  # fmt: skip
VALUES = st.one_of(
    TRICKY_TEXT,
    st.text(max_size=30),
    st.integers(-5, 10**10),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
)
FIELDS = st.sampled_from(
    [
        "event_id", "hospital_id", "case_id", "occurred_at", "type", "department", "item_code",
        "item_name", "category", "quantity", "unit_price", "amount", "ordered_by", "order_id",
        "reverses_event_id", "drg_code", "insurance_scheme", "admitted_at", "discharged_at",
        "reason", "extra",
    ]
)  # fmt: skip
TYPES = st.sampled_from(sorted(VALID))


@settings(max_examples=600, deadline=None)
@given(TYPES, st.dictionaries(FIELDS, VALUES, max_size=3), st.sets(FIELDS, max_size=2))
def test_whatever_the_input_the_fast_path_agrees_with_parse_event(
    name: str, changes: dict[str, Any], dropped: set[str]
) -> None:
    base = VALID[name][0]
    raw = {key: value for key, value in {**base, **changes}.items() if key not in dropped}
    fast = fast_event(orjson.dumps(raw))
    slow = full(raw)
    if fast is not None:
        assert_same(fast, slow)
    elif not changes and not dropped:
        pytest.fail("a valid example missed the fast path")


def test_a_validator_without_a_fast_equivalent_is_refused_when_built() -> None:
    """A check added to the models cannot be skipped silently by the fast path."""
    unknown = core_schema.no_info_after_validator_function(str.strip, core_schema.str_schema())
    with pytest.raises(TypeError, match="no equivalent"):
        _fast_schema(unknown, set())
