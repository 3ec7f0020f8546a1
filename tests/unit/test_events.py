"""The event contract v1: what parse_event accepts and refuses, and which field it names."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.casecost.events import (
    EVENT_ADAPTER,
    Admitted,
    Charge,
    Credit,
    Discharged,
    DrgAssigned,
    Transferred,
    event_to_wire,
    parse_event,
)
from services.validation import field_errors

BASE = {
    "event_id": "e-1",
    "hospital_id": "H1",
    "case_id": "C1",
    "occurred_at": "2026-11-23T08:15:00+08:00",
}


def admitted(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "type": "admitted",
        "department": "CARD",
        "drg_code": "FM15",
        "insurance_scheme": "employee",
        "admitted_at": "2026-11-23T08:00:00+08:00",
        **changes,
    }


def charge(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "type": "charge",
        "department": "CARD",
        "item_code": "STENT-01",
        "item_name": "Coronary stent",
        "category": "consumable",
        "quantity": "2",
        "unit_price": "1250.50",
        "amount": "2501.00",
        **changes,
    }


VALID = {
    "admitted": (admitted(), Admitted),
    "admitted_without_drg": ({k: v for k, v in admitted().items() if k != "drg_code"}, Admitted),
    "drg_assigned": ({**BASE, "type": "drg_assigned", "drg_code": "FM15"}, DrgAssigned),
    "transferred": ({**BASE, "type": "transferred", "department": "ICU"}, Transferred),
    "discharged": (
        {**BASE, "type": "discharged", "discharged_at": "2026-11-30T10:00:00+08:00"},
        Discharged,
    ),
    "charge": (charge(), Charge),
    "charge_with_order": (charge(ordered_by="dr.li", order_id="ORD-7"), Charge),
    "credit": ({**charge(), "type": "credit", "reverses_event_id": "e-0"}, Credit),
}


def errors_of(raw: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_event(raw)
    return {error.field: error.reason for error in field_errors(caught.value)}


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_event_type_has_a_valid_example(name: str) -> None:
    raw, model = VALID[name]
    event = parse_event(raw)
    assert type(event) is model
    assert event.event_id == "e-1" and (event.hospital_id, event.case_id) == ("H1", "C1")
    assert event.occurred_at.utcoffset() == timedelta(hours=8)
    # the wire form parses back to the same event
    assert parse_event(event_to_wire(event)) == event


def test_charge_money_is_decimal() -> None:
    event = parse_event(charge())
    assert isinstance(event, Charge)
    assert event.amount == Decimal("2501.00") and isinstance(event.amount, Decimal)
    assert event.unit_price == Decimal("1250.50")
    assert event.quantity == Decimal("2")
    assert event_to_wire(event)["amount"] == "2501.00"


@pytest.mark.parametrize("field", ["amount", "unit_price", "quantity"])
def test_json_float_is_refused_with_a_message(field: str) -> None:
    errors = errors_of(charge(**{field: 2501.0 if field == "amount" else 2.0}))
    assert field in errors
    assert "decimal string" in errors[field] and "JSON number" in errors[field]


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "2.501E+3",
        "2501e0",
        "1_000",
        "0x10",
        "1.2.3",
        "",
        " ",
        "+5.00",
        "1" * 40,
        "0." + "0" * 38 + "1",
    ],
)
def test_non_plain_decimal_text_is_refused(text: str) -> None:
    errors = errors_of(charge(amount=text))
    assert "amount" in errors


def test_forty_digit_unit_price_is_refused() -> None:
    errors = errors_of(charge(unit_price="9" * 40, amount="1.00"))
    assert "unit_price" in errors


@pytest.mark.parametrize("field", ["amount", "unit_price"])
def test_negative_money_is_refused(field: str) -> None:
    if field == "amount":
        errors = errors_of(charge(amount="-2501.00"))
    else:
        errors = errors_of(charge(unit_price="-1250.50", amount="2501.00"))
    assert errors[field] == "must not be negative"


def test_negative_credit_amount_is_refused() -> None:
    raw = {**charge(amount="-2501.00"), "type": "credit"}
    assert errors_of(raw)["amount"] == "must not be negative"


def test_amount_must_equal_quantity_times_unit_price() -> None:
    errors = errors_of(charge(amount="2501.01"))
    assert set(errors) == {"amount"}
    assert "quantity x unit_price" in errors["amount"]
    assert "2501.00" in errors["amount"]


@pytest.mark.parametrize(
    ("quantity", "unit_price", "right", "wrong"),
    [
        ("3", "0.3350", "1.01", "1.00"),  # 1.0050 rounds half-up, not to even
        ("1", "0.0050", "0.01", "0.00"),
        ("1", "0.0049", "0.00", "0.01"),
        ("2.5", "3.3333", "8.33", "8.34"),  # 8.33325
        ("0.5", "0.0300", "0.02", "0.01"),  # 0.015
        ("7", "12.0000", "84", "84.01"),
    ],
)
def test_amount_is_rounded_half_up_to_the_cent(
    quantity: str, unit_price: str, right: str, wrong: str
) -> None:
    event = parse_event(charge(quantity=quantity, unit_price=unit_price, amount=right))
    assert isinstance(event, Charge) and event.amount == Decimal(right)
    assert set(errors_of(charge(quantity=quantity, unit_price=unit_price, amount=wrong))) == {
        "amount"
    }


def test_amount_with_more_than_two_decimals_is_refused() -> None:
    errors = errors_of(charge(quantity="1", unit_price="1.005", amount="1.005"))
    assert errors == {"amount": "has more than 2 decimal places"}


def test_unit_price_up_to_four_decimals_is_accepted_and_five_refused() -> None:
    event = parse_event(charge(quantity="1", unit_price="0.1234", amount="0.12"))
    assert isinstance(event, Charge) and event.unit_price == Decimal("0.1234")
    errors = errors_of(charge(quantity="1", unit_price="0.12345", amount="0.12"))
    assert errors == {"unit_price": "has more than 4 decimal places"}


@pytest.mark.parametrize("quantity", ["0", "0.0000", "-1"])
def test_quantity_must_be_greater_than_zero(quantity: str) -> None:
    errors = errors_of(charge(quantity=quantity, amount="0.00"))
    assert errors["quantity"] == "must be greater than zero"


def test_quantity_above_the_limit_is_refused() -> None:
    assert "quantity" in errors_of(charge(quantity="100001", unit_price="1", amount="100001.00"))


def test_a_fractional_quantity_is_accepted() -> None:
    event = parse_event(charge(quantity="0.5", unit_price="10.00", amount="5.00"))
    assert isinstance(event, Charge) and event.quantity == Decimal("0.5")


@pytest.mark.parametrize("field", ["occurred_at"])
@pytest.mark.parametrize("value", ["2026-11-23T08:15:00", "2026-11-23T08:15:00.123"])
def test_occurred_at_must_have_an_offset(field: str, value: str) -> None:
    errors = errors_of(charge(**{field: value}))
    assert "UTC offset" in errors[field]


def test_admitted_at_must_have_an_offset() -> None:
    assert "UTC offset" in errors_of(admitted(admitted_at="2026-11-23T08:00:00"))["admitted_at"]


def test_discharged_at_must_have_an_offset() -> None:
    raw = {**BASE, "type": "discharged", "discharged_at": "2026-11-30T10:00:00"}
    assert "UTC offset" in errors_of(raw)["discharged_at"]


def test_a_z_offset_is_accepted() -> None:
    event = parse_event(charge(occurred_at="2026-11-23T00:15:00Z"))
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_unknown_category_is_refused() -> None:
    errors = errors_of(charge(category="food"))
    assert set(errors) == {"category"}


@pytest.mark.parametrize(
    "category", ["drug", "consumable", "exam", "lab", "procedure", "bed", "nursing", "other"]
)
def test_every_listed_category_is_accepted(category: str) -> None:
    event = parse_event(charge(category=category))
    assert isinstance(event, Charge) and event.category.value == category


@pytest.mark.parametrize("name", sorted(VALID))
def test_extra_fields_are_refused(name: str) -> None:
    raw, _ = VALID[name]
    errors = errors_of({**raw, "surprise": "x"})
    assert set(errors) == {"surprise"}


def test_reverses_event_id_is_only_for_credits() -> None:
    assert set(errors_of(charge(reverses_event_id="e-0"))) == {"reverses_event_id"}


@pytest.mark.parametrize(
    "bad",
    [
        "Stent\x00X",
        "Ste\x07nt",
        "St\x1bent",
        "Sten\x7ft",
        "a\nb",
        "Stent\x85X",  # C1 next line
        "Stent \u202egnp.exe",  # right-to-left override: displays as 'exe.png'
        "Sten\u200bt",  # zero-width space
        "Stent\u2066X\u2069",  # bidi isolate
    ],
)
def test_control_and_invisible_characters_in_item_name_are_refused(bad: str) -> None:
    errors = errors_of(charge(item_name=bad))
    assert errors == {"item_name": "must not contain control or invisible formatting characters"}


def test_a_non_ascii_item_name_is_accepted() -> None:
    event = parse_event(charge(item_name="药物洗脱支架 (进口)"))
    assert isinstance(event, Charge) and event.item_name == "药物洗脱支架 (进口)"


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("event_id", 64),
        ("hospital_id", 64),
        ("case_id", 64),
        ("order_id", 64),
        ("ordered_by", 64),
        ("department", 32),
        ("item_code", 32),
    ],
)
def test_over_long_identifiers_are_refused(field: str, limit: int) -> None:
    parse_event(charge(**{field: "A" * limit}))
    errors = errors_of(charge(**{field: "A" * (limit + 1)}))
    assert set(errors) == {field}


def test_over_long_item_name_is_refused() -> None:
    parse_event(charge(item_name="x" * 200))
    assert set(errors_of(charge(item_name="x" * 201))) == {"item_name"}


@pytest.mark.parametrize("value", ["H 1", "-H1", "H1;drop", ""])
def test_identifiers_follow_the_pattern(value: str) -> None:
    assert set(errors_of(charge(hospital_id=value))) == {"hospital_id"}


def test_unknown_type_is_refused() -> None:
    (reason,) = errors_of({**BASE, "type": "teleported"}).values()
    assert "'type'" in reason and "'charge'" in reason and "'teleported'" in reason


def test_missing_type_is_refused() -> None:
    (reason,) = errors_of(dict(BASE)).values()
    assert "'type'" in reason


@pytest.mark.parametrize(
    "missing",
    [
        "event_id",
        "hospital_id",
        "case_id",
        "occurred_at",
        "quantity",
        "unit_price",
        "amount",
        "category",
    ],
)
def test_missing_required_fields_are_named(missing: str) -> None:
    raw = charge()
    del raw[missing]
    assert missing in errors_of(raw)


def test_several_errors_are_reported_together() -> None:
    errors = errors_of(charge(category="food", quantity="0", item_name="a\x00"))
    assert {"category", "quantity", "item_name"} <= set(errors)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_event(["not", "an", "event"])


def test_json_integer_for_money_is_refused() -> None:
    errors = errors_of(charge(quantity="1", unit_price=12, amount=12))
    assert {"unit_price", "amount"} <= set(errors)


@pytest.mark.parametrize("epoch", [1790000000, "1790000000"])
def test_epoch_number_for_occurred_at_is_refused(epoch: object) -> None:
    assert "occurred_at" in errors_of(charge(occurred_at=epoch))


# --- the bounds of numbers and dates --------------------------------------------------------


def test_money_up_to_one_billion_a_line_is_accepted_and_a_cent_more_refused() -> None:
    event = parse_event(charge(quantity="1", unit_price="1000000000", amount="1000000000.00"))
    assert isinstance(event, Charge) and event.amount == Decimal("1000000000")
    errors = errors_of(charge(quantity="1", unit_price="1000000000.01", amount="1000000000.01"))
    assert errors == {
        "unit_price": "must not exceed 1000000000",
        "amount": "must not exceed 1000000000",
    }


def test_a_quantity_up_to_one_hundred_thousand_is_accepted_and_more_refused() -> None:
    event = parse_event(charge(quantity="100000", unit_price="0.01", amount="1000.00"))
    assert isinstance(event, Charge) and event.quantity == Decimal("100000")
    errors = errors_of(charge(quantity="100000.0001", unit_price="0.01", amount="1000.00"))
    assert errors == {"quantity": "must not exceed 100000"}


def test_a_quantity_up_to_four_decimals_is_accepted_and_five_refused() -> None:
    event = parse_event(charge(quantity="1.0001", unit_price="10000", amount="10001.00"))
    assert isinstance(event, Charge) and event.quantity == Decimal("1.0001")
    errors = errors_of(charge(quantity="1.00001", unit_price="10000", amount="10000.10"))
    assert errors == {"quantity": "has more than 4 decimal places"}


def test_a_decimal_of_up_to_24_characters_is_accepted_and_longer_refused() -> None:
    event = parse_event(charge(quantity="1", unit_price="12.50", amount="0" * 19 + "12.50"))
    assert isinstance(event, Charge) and event.amount == Decimal("12.50")
    errors = errors_of(charge(quantity="1", unit_price="12.50", amount="0" * 20 + "12.50"))
    assert errors == {"amount": "must be a decimal string of at most 24 characters"}


@pytest.mark.parametrize(
    ("occurred_at", "accepted"),
    [
        ("2000-01-01T00:00:00+00:00", True),
        ("1999-12-31T23:59:59+00:00", False),
        ("2100-12-31T23:59:59+00:00", True),
        ("2101-01-01T00:00:00+00:00", False),
    ],
)
def test_timestamps_are_years_2000_to_2100(occurred_at: str, accepted: bool) -> None:
    if accepted:
        assert parse_event(charge(occurred_at=occurred_at)).occurred_at.year in (2000, 2100)
    else:
        assert errors_of(charge(occurred_at=occurred_at)) == {
            "occurred_at": "year must be between 2000 and 2100"
        }


# --- what a refusal says, word for word (it reaches the hospital system as the reason) -------

ISO_REASON = "must be an ISO-8601 string with a UTC offset, e.g. 2026-11-23T08:15:00+08:00"
NAIVE_REASON = "must be ISO-8601 with a UTC offset, e.g. 2026-11-23T08:15:00+08:00"
NUMBER_REASON = 'must be a decimal string such as "12.50", not a JSON number'


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"amount": 2501.0}, "amount", NUMBER_REASON),
        ({"quantity": 2.0}, "quantity", NUMBER_REASON),
        ({"quantity": None}, "quantity", "must be a decimal string"),
        ({"quantity": ["2"]}, "quantity", "must be a decimal string"),
        ({"quantity": " "}, "quantity", "must be a decimal string of at most 24 characters"),
        (
            {"amount": "+2501.00"},
            "amount",
            "must be a plain decimal string (digits, one '.', optional '-')",
        ),
        ({"quantity": "1.2.3"}, "quantity", "is not a valid decimal number"),
        ({"quantity": "-"}, "quantity", "is not a valid decimal number"),
        ({"amount": "-0.00"}, "amount", "must not be negative"),
        ({"occurred_at": 1790000000}, "occurred_at", ISO_REASON),
        ({"occurred_at": "23/11/2026 08:15"}, "occurred_at", ISO_REASON),
        ({"occurred_at": "20261123-081500"}, "occurred_at", ISO_REASON),
        ({"occurred_at": "2026-11-23T08:15:00"}, "occurred_at", NAIVE_REASON),
    ],
)
def test_a_refusal_gives_its_reason_word_for_word(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    assert errors_of(charge(**changes)) == {field: reason}


def test_a_quantity_may_be_a_json_integer() -> None:
    event = parse_event(charge(quantity=2))
    assert isinstance(event, Charge) and event.quantity == Decimal("2")


@pytest.mark.parametrize("name", ["药物\u3000支架", "Stent\u00a0XL"])  # ideographic, no-break space
def test_an_item_name_with_a_wide_or_no_break_space_is_accepted(name: str) -> None:
    event = parse_event(charge(item_name=name))
    assert isinstance(event, Charge) and event.item_name == name


def test_the_wire_form_leaves_out_absent_fields() -> None:
    admission = parse_event({k: v for k, v in admitted().items() if k != "drg_code"})
    assert "drg_code" not in event_to_wire(admission)
    wire = event_to_wire(parse_event(charge()))
    assert "ordered_by" not in wire and "order_id" not in wire
    assert None not in wire.values()


def test_the_published_schema_gives_money_and_quantities_as_decimal_strings() -> None:
    properties = EVENT_ADAPTER.json_schema()["$defs"]["Charge"]["properties"]
    two, four = r"^[0-9]{1,10}(\.[0-9]{1,2})?$", r"^[0-9]{1,10}(\.[0-9]{1,4})?$"
    assert properties["amount"] == {
        "type": "string",
        "pattern": two,
        "description": "decimal string to the cent; must equal quantity x unit_price",
        "title": "Amount",
    }
    assert properties["unit_price"] == {
        "type": "string",
        "pattern": four,
        "description": "decimal string, up to 4 places",
        "title": "Unit Price",
    }
    assert properties["quantity"] == {
        "type": "string",
        "pattern": four,
        "description": "decimal string (an integer is accepted), greater than zero",
        "title": "Quantity",
    }
