"""Event contract v1: the events hospital systems post, validated exactly.

Money and quantities are decimal strings on the wire and `Decimal` here; a JSON number
for money is refused, because a binary float cannot carry a price to the cent.

Identifiers (event, hospital, case, order and orderer ids) are 1 to 64 characters of
ASCII letters, digits and `-` `_` `.` `:`, starting with a letter or digit; codes
(department, DRG, insurance scheme, item) are 1 to 32 of the same without `:`. That is
what HIS and billing systems use for keys (`ZY2026-000123`, `1.2.156.112604:88`), and
it keeps every id safe as a URL path segment and inside the case key
`hospital_id/case_id` (services/wire.py), which is unambiguous only because no id
holds a `/`. Control characters (NUL among them) never get in.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import CoreSchema, core_schema

CENT = Decimal("0.01")
MAX_MONEY = Decimal("1000000000")  # one billion per line: anything larger is a typo
MAX_QUANTITY = Decimal("100000")


class Category(StrEnum):
    DRUG = "drug"
    CONSUMABLE = "consumable"
    EXAM = "exam"
    LAB = "lab"
    PROCEDURE = "procedure"
    BED = "bed"
    NURSING = "nursing"
    OTHER = "other"


_DECIMAL_CHARACTERS = str.maketrans("", "", "0123456789.-")


def decimal_text(value: Any) -> Decimal:
    """Accept a decimal string (or an int) and refuse floats, NaN, Infinity and exponents."""
    if isinstance(value, (bool, float)):
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    if isinstance(value, int | Decimal):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be a decimal string")
    text = value.strip()
    if not text or len(text) > 24:
        raise ValueError("must be a decimal string of at most 24 characters")
    if text.translate(_DECIMAL_CHARACTERS):  # anything left is not a digit, '.' or '-'
        raise ValueError("must be a plain decimal string (digits, one '.', optional '-')")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("is not a valid decimal number") from None
    if not number.is_finite():
        raise ValueError("must be finite")
    return number


def money_text(value: Any) -> Decimal:
    """Money only as a decimal string: a JSON number of any kind is refused."""
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    if value.strip().startswith("-"):
        raise ValueError("must not be negative")
    return decimal_text(value)


def iso_text(value: Any) -> Any:
    """Timestamps only as ISO-8601 text: epoch numbers are ambiguous and refused."""
    if not isinstance(value, str) or not value[:4].isdigit() or "-" not in value[:8]:
        raise ValueError(
            "must be an ISO-8601 string with a UTC offset, e.g. 2026-11-23T08:15:00+08:00"
        )
    return value


def _bounded(value: Decimal, places: int) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    if value > MAX_MONEY:
        raise ValueError(f"must not exceed {MAX_MONEY}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise ValueError(f"has more than {places} decimal places")
    return value


def _price(value: Decimal) -> Decimal:
    return _bounded(value, 4)


def _amount(value: Decimal) -> Decimal:
    return _bounded(value, 2)


def _quantity(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than zero")
    if value > MAX_QUANTITY:
        raise ValueError(f"must not exceed {MAX_QUANTITY}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ValueError("has more than 4 decimal places")
    return value


LINE_BREAKS = frozenset("\r\n\t")


def printable(value: str, *, line_breaks: bool = False) -> str:
    """Any script is fine; control and invisible format characters are not (with
    `line_breaks`, text of several lines keeps its line breaks and tabs).

    Unicode categories Cc (C0 and C1 controls, NUL among them) and Cf (format:
    bidirectional overrides that make text display other than it is stored, zero-width
    characters, BOM).
    """
    if value.isprintable():  # the usual case, at C speed: no Cc or Cf in it
        return value
    allowed = LINE_BREAKS if line_breaks else frozenset()
    if any(ch not in allowed and unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise ValueError("must not contain control or invisible formatting characters")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be ISO-8601 with a UTC offset, e.g. 2026-11-23T08:15:00+08:00")
    if not 2000 <= value.year <= 2100:
        raise ValueError("year must be between 2000 and 2100")
    return value


def _decimal_schema(places: int, description: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": rf"^[0-9]{{1,10}}(\.[0-9]{{1,{places}}})?$",
            "description": description,
        }
    )


# one validator per field, text to bounded Decimal (a line has three such fields, and
# every event is validated at ingest and again by the worker)
UnitPrice = Annotated[
    Decimal,
    BeforeValidator(lambda value: _price(money_text(value))),
    _decimal_schema(4, "decimal string, up to 4 places"),
]
Amount = Annotated[
    Decimal,
    BeforeValidator(lambda value: _amount(money_text(value))),
    _decimal_schema(2, "decimal string to the cent; must equal quantity x unit_price"),
]
Quantity = Annotated[
    Decimal,
    BeforeValidator(lambda value: _quantity(decimal_text(value))),
    _decimal_schema(4, "decimal string (an integer is accepted), greater than zero"),
]


class CharacterRule:
    """Reports any refusal of the annotated text type as one sentence stating its rule
    (instead of pydantic's length or regex messages); the check itself stays in
    pydantic-core, so events validate at the same speed."""

    def __init__(self, rule: str) -> None:
        self.rule = rule

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.custom_error_schema(
            handler(source), custom_error_type="characters", custom_error_message=self.rule
        )


IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
IDENTIFIER_RULE = (
    "must be 1 to 64 characters: letters A-Z a-z, digits 0-9 and - _ . :,"
    " starting with a letter or digit"
)
CODE_RULE = (
    "must be 1 to 32 characters: letters A-Z a-z, digits 0-9 and - _ .,"
    " starting with a letter or digit"
)
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description=IDENTIFIER_RULE),
    CharacterRule(IDENTIFIER_RULE),
]
Code = Annotated[
    str,
    Field(min_length=1, max_length=32, pattern=CODE_PATTERN, description=CODE_RULE),
    CharacterRule(CODE_RULE),
]
Label = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(printable)]
Timestamp = Annotated[datetime, BeforeValidator(iso_text), AfterValidator(_aware)]
# every time an event can carry, for checks across them (ingest's plausibility)
TIMESTAMP_FIELDS = ("occurred_at", "admitted_at", "discharged_at")


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    event_id: Identifier
    hospital_id: Identifier
    case_id: Identifier
    occurred_at: Timestamp


class Admitted(_EventBase):
    type: Literal["admitted"]
    department: Code
    drg_code: Code | None = None
    insurance_scheme: Code
    admitted_at: Timestamp


class DrgAssigned(_EventBase):
    type: Literal["drg_assigned"]
    drg_code: Code


class Transferred(_EventBase):
    type: Literal["transferred"]
    department: Code


class Discharged(_EventBase):
    type: Literal["discharged"]
    discharged_at: Timestamp


class DischargeCancelled(_EventBase):
    """Withdraws a discharge recorded by mistake (HL7 ADT^A13): every discharge that
    occurred before it. The case is open again until a discharge that occurs after it."""

    type: Literal["discharge_cancelled"]
    reason: Label | None = None


class _CostLine(_EventBase):
    department: Code
    item_code: Code
    item_name: Label
    category: Category
    quantity: Quantity
    unit_price: UnitPrice
    amount: Amount
    ordered_by: Identifier | None = None
    order_id: Identifier | None = None

    @field_validator("amount")
    @classmethod
    def _amount_is_quantity_times_price(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        quantity, unit_price = info.data.get("quantity"), info.data.get("unit_price")
        if quantity is None or unit_price is None:
            return amount  # their own errors are reported
        expected = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount != expected:
            raise ValueError(
                f"{amount} != quantity x unit_price ({quantity} x {unit_price} = {expected})"
            )
        return amount


class Charge(_CostLine):
    type: Literal["charge"]


class Credit(_CostLine):
    """Reverses all or part of an earlier charge; amounts are positive and subtracted."""

    type: Literal["credit"]
    reverses_event_id: Identifier | None = None


Event = Annotated[
    Admitted | DrgAssigned | Transferred | Discharged | DischargeCancelled | Charge | Credit,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES = (
    "admitted",
    "drg_assigned",
    "transferred",
    "discharged",
    "discharge_cancelled",
    "charge",
    "credit",
)


def parse_event(raw: object) -> Event:
    """Validate one decoded JSON object as an event (raises pydantic.ValidationError)."""
    return EVENT_ADAPTER.validate_python(raw)


def event_to_wire(event: Event) -> dict[str, Any]:
    """The event as JSON-ready data: decimals and timestamps as strings, nulls dropped."""
    return event.model_dump(mode="json", exclude_none=True)
