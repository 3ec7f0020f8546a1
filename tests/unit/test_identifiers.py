"""The characters an id may hold, and why: the case key `hospital_id/case_id` names one
case only if no id holds a `/`, and PostgreSQL text cannot hold NUL."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.casecost.events import (
    CODE_PATTERN,
    CODE_RULE,
    EVENT_ADAPTER,
    IDENTIFIER_PATTERN,
    IDENTIFIER_RULE,
    parse_event,
)
from services.validation import field_errors
from services.wire import case_key

identifiers = st.from_regex(IDENTIFIER_PATTERN, fullmatch=True).filter(lambda v: len(v) <= 64)
BASE = {"event_id": "E1", "hospital_id": "H1", "case_id": "C1"}
OCCURRED = "2026-11-02T09:00:00+08:00"


def charge(**over: Any) -> dict[str, Any]:
    return {
        **BASE,
        "type": "charge",
        "occurred_at": OCCURRED,
        "department": "CARD",
        "item_code": "LAB001",
        "item_name": "Blood panel",
        "category": "lab",
        "quantity": "1",
        "unit_price": "1.00",
        "amount": "1.00",
        "ordered_by": "DR7",
        "order_id": "ORD-1",
        **over,
    }


def errors_of(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_event(raw)
    return {error.field: error.reason for error in field_errors(caught.value)}


@given(hospital_id=identifiers, case_id=identifiers)
def test_the_case_key_of_valid_ids_names_exactly_one_case(hospital_id: str, case_id: str) -> None:
    assert case_key(hospital_id, case_id).decode().split("/") == [hospital_id, case_id]


def test_the_ambiguous_pair_cannot_both_exist() -> None:
    # the same key, two hospitals: H1's case OTHER/C9 and H1/OTHER's case C9
    assert case_key("H1", "OTHER/C9") == case_key("H1/OTHER", "C9")
    assert set(errors_of(charge(hospital_id="H1", case_id="OTHER/C9"))) == {"case_id"}
    assert set(errors_of(charge(hospital_id="H1/OTHER", case_id="C9"))) == {"hospital_id"}


IDENTIFIER_FIELDS = ["event_id", "hospital_id", "case_id", "ordered_by", "order_id"]
CODE_FIELDS = ["department", "item_code"]


@pytest.mark.parametrize("field", IDENTIFIER_FIELDS + CODE_FIELDS)
@pytest.mark.parametrize(
    "value",
    [
        "A/B",
        "A\x00B",
        "\x00",
        "A\x01",
        "A\x1b[31m",
        "A\x7f",
        "A\u0085B",
        "A B",
        "A\u202eB",
        "病例1",
    ],
)
def test_no_id_or_code_holds_a_slash_control_or_other_character(field: str, value: str) -> None:
    reason = errors_of(charge(**{field: value}))[field]
    assert reason == (IDENTIFIER_RULE if field in IDENTIFIER_FIELDS else CODE_RULE)


@pytest.mark.parametrize("value", ["ZY2026-000123", "1.2.156.112604:88", "C_1", "a", "9" * 64])
def test_identifiers_that_his_systems_use_are_accepted(value: str) -> None:
    for field in IDENTIFIER_FIELDS:
        assert getattr(parse_event(charge(**{field: value})), field) == value


@pytest.mark.parametrize("value", ["FM15", "CARD-2", "I21.001", "XB01_A", "9" * 32])
def test_codes_that_his_systems_use_are_accepted(value: str) -> None:
    assert parse_event(charge(department=value, item_code=value)).item_code == value


def test_a_code_holds_no_colon() -> None:
    assert set(errors_of(charge(department="CA:RD"))) == {"department"}


def test_drg_and_scheme_codes_follow_the_code_rule() -> None:
    admitted = {
        **BASE,
        "type": "admitted",
        "occurred_at": OCCURRED,
        "department": "CARD",
        "drg_code": "FM/15",
        "insurance_scheme": "emp\x00loyee",
        "admitted_at": OCCURRED,
    }
    assert errors_of(admitted) == {"drg_code": CODE_RULE, "insurance_scheme": CODE_RULE}


def test_the_published_schema_states_the_rules() -> None:
    schema = EVENT_ADAPTER.json_schema()
    charge_schema = schema["$defs"]["Charge"]["properties"]
    assert charge_schema["case_id"]["pattern"] == IDENTIFIER_PATTERN
    assert charge_schema["case_id"]["description"] == IDENTIFIER_RULE
    assert charge_schema["item_code"]["pattern"] == CODE_PATTERN
