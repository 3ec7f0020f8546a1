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
from collections.abc import Callable
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
from pydantic_core import CoreSchema, SchemaValidator, ValidationError, core_schema

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


def _unit_price_text(value: Any) -> Decimal:
    return _price(money_text(value))


def _amount_text(value: Any) -> Decimal:
    return _amount(money_text(value))


def _quantity_text(value: Any) -> Decimal:
    return _quantity(decimal_text(value))


# one validator per field, text to bounded Decimal (a line has three such fields, and
# every event is validated at ingest and again by the worker)
UnitPrice = Annotated[
    Decimal,
    BeforeValidator(_unit_price_text),
    _decimal_schema(4, "decimal string, up to 4 places"),
]
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount_text),
    _decimal_schema(2, "decimal string to the cent; must equal quantity x unit_price"),
]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_quantity_text),
    _decimal_schema(4, "decimal string (an integer is accepted), greater than zero"),
]


def line_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """What a line's `amount` must be: quantity x unit_price to the cent, half up."""
    return (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


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
        expected = line_amount(quantity, unit_price)
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


# The fast path. Through the models above an event costs about 9 µs, two thirds of it in
# the Python validators pydantic-core calls field by field. `fast_event` checks the same
# rules in one pass of pydantic-core over the JSON bytes, with its own constraints where
# a Python validator stood (the decimal text matched by a pattern before it is parsed,
# the timestamp's year by a pattern and its offset by `tz_constraint`), then the two
# checks that stay in Python (printable labels, amount = quantity x unit_price), and
# builds the same model objects. What it accepts, parse_event accepts as the same event;
# what it does not, parse_event decides: it says why, or accepts what only its own
# conversions take (a quantity as a JSON integer, a decimal with spaces around it).

_YEAR_PATTERN = r"^(20[0-9]{2}|2100)-"  # _aware's 2000..2100, on the text


def _plain_decimal(
    integer_digits: int, places: int, *, le: Decimal, gt: Decimal | None = None
) -> CoreSchema:
    """Decimal text without sign, exponent or spaces, in the field's bounds, as a Decimal."""
    pattern = rf"^[0-9]{{1,{integer_digits}}}(\.[0-9]{{1,{places}}})?$"
    return core_schema.chain_schema(
        [
            core_schema.str_schema(pattern=pattern, strip_whitespace=False),
            core_schema.decimal_schema(le=le, gt=gt),
        ]
    )


def _iso_text_schema(inner: CoreSchema) -> CoreSchema:
    text = core_schema.str_schema(pattern=_YEAR_PATTERN, strip_whitespace=False)
    return core_schema.chain_schema([text, inner])


def _aware_schema(inner: CoreSchema) -> CoreSchema:
    assert inner["type"] == "chain" and inner["steps"][-1]["type"] == "datetime"
    steps = [*inner["steps"][:-1], {**inner["steps"][-1], "tz_constraint": "aware"}]
    return core_schema.chain_schema(steps)


def _checked_after(inner: CoreSchema) -> CoreSchema:
    return inner  # checked in Python once the event is parsed (_fast_checks_pass)


# each Python validator of the models -> the schema that checks what it checks
_FAST_EQUIVALENTS: dict[Callable[..., Any], Callable[[CoreSchema], CoreSchema]] = {
    _unit_price_text: lambda _: _plain_decimal(10, 4, le=MAX_MONEY),
    _amount_text: lambda _: _plain_decimal(10, 2, le=MAX_MONEY),
    _quantity_text: lambda _: _plain_decimal(6, 4, le=MAX_QUANTITY, gt=Decimal(0)),
    iso_text: _iso_text_schema,
    _aware: _aware_schema,
    printable: _checked_after,
    _CostLine._amount_is_quantity_times_price.__func__: _checked_after,  # type: ignore[attr-defined]
}
_FUNCTION_SCHEMAS = frozenset({"function-before", "function-after", "function-wrap"})


def _fast_schema(schema: Any, replaced: set[Callable[..., Any]]) -> Any:
    """A core schema with each Python validator replaced by its equivalent (noted in
    `replaced`)."""
    if isinstance(schema, list):
        return [_fast_schema(item, replaced) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if isinstance(kind := schema.get("type"), str) and kind in _FUNCTION_SCHEMAS:
        function = schema["function"]["function"]
        function = getattr(function, "__func__", function)
        equivalent = _FAST_EQUIVALENTS.get(function)
        if equivalent is None:
            raise TypeError(f"fast_event has no equivalent of the validator {function!r}")
        replaced.add(function)
        return equivalent(_fast_schema(schema["schema"], replaced))
    return {key: _fast_schema(value, replaced) for key, value in schema.items()}


_MODELS: dict[str, type[_EventBase]] = {
    "admitted": Admitted,
    "drg_assigned": DrgAssigned,
    "transferred": Transferred,
    "discharged": Discharged,
    "discharge_cancelled": DischargeCancelled,
    "charge": Charge,
    "credit": Credit,
}


def _fast_validator() -> tuple[SchemaValidator, dict[str, tuple[str, ...]]]:
    """The events' fast validator, and each type's label fields (checked after it).

    It validates model-fields schemas, not model ones: given a model schema, pydantic-core
    would use the class's own validator; fast_event builds the objects from the fields.
    """
    choices: dict[Any, CoreSchema] = {}
    labels: dict[str, tuple[str, ...]] = {}
    for kind, model in _MODELS.items():
        model_fields = model.__pydantic_core_schema__["schema"]
        fields, label_fields = {}, []
        for name, field in model_fields["fields"].items():
            replaced: set[Callable[..., Any]] = set()
            fields[name] = _fast_schema(field, replaced)
            if printable in replaced:
                label_fields.append(name)
        choices[kind] = {**model_fields, "fields": fields}
        labels[kind] = tuple(label_fields)
    config = _EventBase.__pydantic_core_schema__["config"]
    union = core_schema.tagged_union_schema(choices, discriminator="type")
    return SchemaValidator(union, config), labels


_FAST_VALIDATOR, _LABEL_FIELDS = _fast_validator()
_PRICED = frozenset(kind for kind, model in _MODELS.items() if issubclass(model, _CostLine))
_new_object = object.__new__
_set_slot = object.__setattr__


def _fast_checks_pass(kind: str, fields: dict[str, Any]) -> bool:
    for name in _LABEL_FIELDS[kind]:
        label = fields[name]
        if label is not None and not label.isprintable():
            return False  # printable() decides: line breaks are allowed in some labels
    return kind not in _PRICED or fields["amount"] == line_amount(
        fields["quantity"], fields["unit_price"]
    )


def fast_event(raw: bytes) -> Event | None:
    """The event in JSON bytes, checked in one pass: equal to parse_event's, or None when
    the fast path cannot vouch for it (parse_event then decides)."""
    try:
        fields, _, fields_set = _FAST_VALIDATOR.validate_json(raw)
    except ValidationError:
        return None
    kind = fields["type"]
    if not _fast_checks_pass(kind, fields):
        return None
    # built as pydantic's own model_construct and unpickling build a model: the validated
    # fields, those given, no extras, no private state
    event = _new_object(_MODELS[kind])
    _set_slot(event, "__dict__", fields)
    _set_slot(event, "__pydantic_fields_set__", fields_set)
    _set_slot(event, "__pydantic_extra__", None)
    _set_slot(event, "__pydantic_private__", None)
    return event  # type: ignore[return-value]
