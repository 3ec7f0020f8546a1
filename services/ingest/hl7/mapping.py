"""One HL7 v2 message to contract v1 events (pure: no I/O).

| message          | events                                                              |
|------------------|---------------------------------------------------------------------|
| DFT^P03, DFT^P11 | per FT1: `charge` or `credit` by FT1-6 (profile `transaction_types`)|
| ADT^A01          | `admitted` (department, insurance scheme, working DRG, PV1-44)      |
| ADT^A02          | `transferred` (the new department)                                  |
| ADT^A03          | `discharged` (PV1-45)                                               |
| ADT^A08          | `transferred` with the current department                           |
| ADT^A13          | `discharge_cancelled` (the case is open again; reason from EVN-4)   |
| ADT^A02/03/08/13 | and `drg_assigned` when the message carries a working DRG           |

A message maps whole or not at all: any problem refuses it (AE for what the sender can
correct, AR for what drgwatch does not take), naming the segment, the field and why.
Event ids: FT1-2 (the transaction id), else MSH-10 `:` FT1-1; an ADT event's is MSH-10
`:` its type. So a message sent again is recognised as a duplicate.

Category: the profile's, by FT1-7's coding system or the item code's prefix; else the
item's in the chargemaster in force for the hospital on the charge's local day (passed in
as a `ChargeBook`, so that mapping stays free of I/O); else the profile's default, with a
note.

Money: FT1-11 is the extended amount, FT1-12 the unit amount, FT1-10 the quantity (1
when empty). With only the unit amount, extended = quantity x unit (to the cent); with
only the extended amount, unit = extended / quantity (at most 4 places: one that does not
divide exactly is refused); with both, they must agree. Negative quantities or amounts
mark a reversal: a credit line keeps their size; a charge line becomes a credit
(`negative_charge: credit`) or is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any, Literal
from zoneinfo import ZoneInfo

from services.casecost.chargemaster import ChargeBook
from services.casecost.events import CENT, Category
from services.ingest.hl7.er7 import Location, Message, Segment
from services.ingest.hl7.profile import FieldPath, Profile, Profiles

AckCode = Literal["AA", "AE", "AR"]
UNIT_PLACES = Decimal("0.0001")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_TIME = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?([+-]\d{4})?$"
)
ADT_TRIGGERS = ("A01", "A02", "A03", "A08", "A13")
DFT_TRIGGERS = ("P03", "P11")

# HL7 table 0357, the codes an ERR segment names
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
TABLE_VALUE_NOT_FOUND = 103
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNKNOWN_KEY = 204
APPLICATION_ERROR = 207


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a message (or one of its values) was refused, or a note on what was assumed."""

    reason: str
    location: Location | None = None
    code: int = DATA_TYPE_ERROR

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}" if self.location else self.reason


class Refused(Exception):
    def __init__(self, code: AckCode, problem: Problem) -> None:
        super().__init__(str(problem))
        self.ack_code = code
        self.problem = problem


@dataclass(slots=True)
class MappedEvent:
    """A contract v1 event as JSON-ready data, and where each of its fields came from."""

    event: dict[str, Any]
    sources: dict[str, Location] = field(default_factory=dict)


@dataclass(slots=True)
class Mapped:
    """What a message became: its events and notes, or the refusal."""

    events: list[MappedEvent] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    refusal: AckCode | None = None
    problems: list[Problem] = field(default_factory=list)
    hospital_id: str | None = None
    case_id: str | None = None


def map_message(
    message: Message, profiles: Profiles, zone: ZoneInfo, charge_book: ChargeBook
) -> Mapped:
    """The events of `message` (see the module docstring); never raises for its content.
    `charge_book`: every chargemaster version, for the categories the profile lacks."""
    mapped = Mapped()
    try:
        _map(message, profiles, zone, charge_book, mapped)
    except Refused as refusal:
        mapped.events = []
        mapped.refusal = refusal.ack_code
        mapped.problems = [refusal.problem]
    return mapped


class _Reader:
    """Reads a profile's places from a message (and from one segment, such as an FT1)."""

    def __init__(self, message: Message, profile: Profile) -> None:
        self.message = message
        self.profile = profile

    def find(self, name: str, within: Segment | None = None) -> tuple[str, Location]:
        """The first non-empty value of the places `name` lists, and where it was (or,
        when every place is empty, the first place)."""
        places = self.profile.place(name)
        for place in places:
            for segment in self._segments(place, within):
                value = segment.value(place.field, place.component, place.subcomponent)
                if value:
                    return value, segment.location(place.field, place.component)
        first = places[0]
        sequence = within.sequence if within is not None and within.name == first.segment else 1
        return "", Location(first.segment, first.field, sequence, first.component)

    def _segments(self, place: FieldPath, within: Segment | None) -> list[Segment]:
        if within is not None and place.segment == within.name:
            return [within]
        return self.message.all(place.segment)

    def required(self, name: str, what: str, within: Segment | None = None) -> tuple[str, Location]:
        value, where = self.find(name, within)
        if not value:
            places = ", ".join(self.profile.fields.model_dump()[name])
            raise Refused(
                "AE",
                Problem(f"{what} is missing (read from {places})", where, REQUIRED_FIELD_MISSING),
            )
        return value, where


def _map(
    message: Message, profiles: Profiles, zone: ZoneInfo, charge_book: ChargeBook, mapped: Mapped
) -> None:
    header = message.header
    if not message.control_id:
        raise Refused("AR", Problem("the message control id is missing", header.location(10), 101))
    facility = message.sending_facility
    profile = profiles.for_sender(facility, message.sending_application)
    if profile is None:
        raise Refused(
            "AR",
            Problem(
                f"no HL7 profile reads sending facility {facility!r}"
                f" (application {message.sending_application!r})",
                header.location(4),
                UNKNOWN_KEY,
            ),
        )
    mapped.hospital_id = _hospital(message, profile)
    reader = _Reader(message, profile)
    local = profile.zone(zone)
    code, trigger = message.message_code, message.trigger_event
    if code == "DFT" and trigger in DFT_TRIGGERS:
        base = _base(message, reader, mapped)
        _financial(message, reader, local, charge_book, base, mapped)
    elif code == "ADT" and trigger in ADT_TRIGGERS:
        base = _base(message, reader, mapped)
        _admission(message, trigger, reader, local, base, mapped)
    elif code in ("ADT", "DFT"):
        raise Refused(
            "AR",
            Problem(
                f"{code}^{trigger} is not taken (ADT: {', '.join(ADT_TRIGGERS)};"
                f" DFT: {', '.join(DFT_TRIGGERS)})",
                header.location(9, 2),
                UNSUPPORTED_EVENT_CODE,
            ),
        )
    else:
        raise Refused(
            "AR",
            Problem(
                f"message type {code or '(empty)'} is not taken (ADT, DFT)",
                header.location(9),
                UNSUPPORTED_MESSAGE_TYPE,
            ),
        )


def _hospital(message: Message, profile: Profile) -> str:
    if profile.hospital_id:
        return profile.hospital_id
    facility = message.sending_facility
    where = message.header.location(4)
    if not facility:
        raise Refused("AR", Problem("the sending facility is missing", where, 101))
    if profile.hospitals:
        if facility not in profile.hospitals:
            raise Refused(
                "AR",
                Problem(
                    f"sending facility {facility!r} is not in profile {profile.name!r}'s hospitals",
                    where,
                    UNKNOWN_KEY,
                ),
            )
        return profile.hospitals[facility]
    return facility


def _base(message: Message, reader: _Reader, mapped: Mapped) -> MappedEvent:
    case_id, case_at = reader.required("case_id", "the visit number (the case)")
    mapped.case_id = case_id
    return MappedEvent(
        event={"hospital_id": mapped.hospital_id, "case_id": case_id},
        sources={"hospital_id": message.header.location(4), "case_id": case_at},
    )


def _with(base: MappedEvent, event: dict[str, Any], sources: dict[str, Location]) -> MappedEvent:
    return MappedEvent(event={**base.event, **event}, sources={**base.sources, **sources})


def _admission(
    message: Message,
    trigger: str,
    reader: _Reader,
    zone: ZoneInfo,
    base: MappedEvent,
    mapped: Mapped,
) -> None:
    control_id = message.control_id
    happened_text, happened_at = reader.required("event_time", "the event time")
    occurred_at = hl7_time(happened_text, happened_at, zone)
    drg_code, drg_at = reader.find("drg_code")
    timed = {"occurred_at": occurred_at}
    timed_sources = {"occurred_at": happened_at, "event_id": message.header.location(10)}
    if trigger == "A01":
        department, department_at = reader.required("department", "the department")
        scheme, scheme_at = _scheme(reader)
        admitted_text, admitted_at = reader.find("admitted_at")
        event: dict[str, Any] = {
            "event_id": f"{control_id}:admitted",
            "type": "admitted",
            **timed,
            "department": department,
            "insurance_scheme": scheme,
            "admitted_at": (
                hl7_time(admitted_text, admitted_at, zone) if admitted_text else occurred_at
            ),
        }
        sources = {
            **timed_sources,
            "department": department_at,
            "insurance_scheme": scheme_at,
            "admitted_at": admitted_at if admitted_text else happened_at,
        }
        if drg_code:
            event["drg_code"] = drg_code
            sources["drg_code"] = drg_at
        mapped.events.append(_with(base, event, sources))
        return
    if trigger in ("A02", "A08"):
        department, department_at = (
            reader.required("department", "the new department")
            if trigger == "A02"
            else reader.find("department")
        )
        if department:
            mapped.events.append(
                _with(
                    base,
                    {
                        "event_id": f"{control_id}:transferred",
                        "type": "transferred",
                        **timed,
                        "department": department,
                    },
                    {**timed_sources, "department": department_at},
                )
            )
    if trigger == "A03":
        discharged_text, discharged_at = reader.find("discharged_at")
        mapped.events.append(
            _with(
                base,
                {
                    "event_id": f"{control_id}:discharged",
                    "type": "discharged",
                    **timed,
                    "discharged_at": (
                        hl7_time(discharged_text, discharged_at, zone)
                        if discharged_text
                        else occurred_at
                    ),
                },
                {
                    **timed_sources,
                    "discharged_at": discharged_at if discharged_text else happened_at,
                },
            )
        )
    if trigger == "A13":
        reason, reason_at = reader.find("event_reason")
        cancelled: dict[str, Any] = {
            "event_id": f"{control_id}:discharge_cancelled",
            "type": "discharge_cancelled",
            **timed,
        }
        cancelled_sources = dict(timed_sources)
        if reason:
            cancelled["reason"] = reason
            cancelled_sources["reason"] = reason_at
        mapped.events.append(_with(base, cancelled, cancelled_sources))
    if drg_code:
        mapped.events.append(
            _with(
                base,
                {
                    "event_id": f"{control_id}:drg_assigned",
                    "type": "drg_assigned",
                    **timed,
                    "drg_code": drg_code,
                },
                {**timed_sources, "drg_code": drg_at},
            )
        )
    if not mapped.events:
        mapped.notes.append(
            Problem(
                "nothing drgwatch counts changed (no department, no DRG): nothing recorded",
                None,
                0,
            )
        )


def _scheme(reader: _Reader) -> tuple[str, Location]:
    profile = reader.profile
    value, location = reader.find("insurance_scheme")
    if value:
        return profile.insurance_schemes.get(value, value), location
    if profile.default_insurance_scheme:
        return profile.default_insurance_scheme, location
    raise Refused(
        "AE",
        Problem(
            "the financial class (insurance scheme) is missing and the profile has no"
            " default_insurance_scheme",
            location,
            REQUIRED_FIELD_MISSING,
        ),
    )


def _financial(
    message: Message,
    reader: _Reader,
    zone: ZoneInfo,
    charge_book: ChargeBook,
    base: MappedEvent,
    mapped: Mapped,
) -> None:
    lines = message.all("FT1")
    if not lines:
        raise Refused(
            "AE",
            Problem("a DFT message needs at least one FT1 segment", None, 100),
        )
    for line in lines:
        _line(message, line, reader, zone, charge_book, base, mapped)
    if not mapped.events:
        mapped.notes.append(Problem("no FT1 line is a case cost: nothing recorded", None, 0))


def _line(
    message: Message,
    line: Segment,
    reader: _Reader,
    zone: ZoneInfo,
    charge_book: ChargeBook,
    base: MappedEvent,
    mapped: Mapped,
) -> None:
    profile = reader.profile
    kind_code, kind_at = reader.required("transaction_type", "the transaction type", line)
    kind = profile.transaction_types.get(kind_code.upper())
    if kind is None or kind == "refuse":
        known = ", ".join(f"{code} {what}" for code, what in profile.transaction_types.items())
        raise Refused(
            "AE",
            Problem(
                f"transaction type {kind_code!r} is not taken (profile {profile.name!r}: {known})",
                kind_at,
                TABLE_VALUE_NOT_FOUND,
            ),
        )
    if kind == "skip":
        mapped.notes.append(
            Problem(f"transaction type {kind_code} is not a case cost: not counted", kind_at, 0)
        )
        return
    transaction_id, transaction_at = reader.find("transaction_id", line)
    if transaction_id:
        event_id, event_id_at = transaction_id, transaction_at
    else:
        event_id = f"{message.control_id}:{line.value(1) or line.sequence}"
        event_id_at = message.header.location(10)
    date_text, date_at = reader.required("transaction_date", "the transaction date", line)
    item_code, item_at = reader.required("item_code", "the item code", line)
    item_name, name_at = reader.find("item_name", line)
    coding_system, _ = reader.find("coding_system", line)
    department, department_at = reader.required("charge_department", "the department", line)
    quantity, unit_price, amount, negative, money_at = _money(reader, line)
    event_type = kind
    if negative and kind == "charge":
        if profile.negative_charge == "refuse":
            raise Refused(
                "AE",
                Problem(
                    "a charge with a negative quantity or amount (send a credit, FT1-6 CD)",
                    money_at["amount"],
                ),
            )
        event_type = "credit"
        mapped.notes.append(
            Problem(f"negative charge {event_id} counted as a credit", money_at["amount"], 0)
        )
    occurred_at = hl7_time(date_text, date_at, zone)
    category = _category(
        profile,
        charge_book,
        hospital_id=str(base.event["hospital_id"]),
        item_code=item_code,
        coding_system=coding_system,
        day=datetime.fromisoformat(occurred_at).astimezone(zone).date(),
        item_at=item_at,
        mapped=mapped,
    )
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "department": department,
        "item_code": item_code,
        "item_name": " ".join((item_name or item_code).split()),
        "category": category.value,
        "quantity": str(quantity),
        "unit_price": str(unit_price),
        "amount": str(amount),
    }
    sources: dict[str, Location] = {
        "event_id": event_id_at,
        "occurred_at": date_at,
        "department": department_at,
        "item_code": item_at,
        "item_name": name_at if item_name else item_at,
        "category": item_at,
        **money_at,
    }
    for name in ("ordered_by", "order_id"):
        value, where = reader.find(name, line)
        if value:
            event[name] = value
            sources[name] = where
    mapped.events.append(_with(base, event, sources))


def _category(
    profile: Profile,
    charge_book: ChargeBook,
    *,
    hospital_id: str,
    item_code: str,
    coding_system: str,
    day: date,
    item_at: Location,
    mapped: Mapped,
) -> Category:
    """The profile's category for the item, else the chargemaster's in force for the
    hospital on `day` (its local day), else the profile's default (noted)."""
    category = profile.categories.of(item_code, coding_system)
    if category is not None:
        return category
    listed = charge_book.category_of(hospital_id, item_code, day)
    if listed is not None:
        return Category(listed)
    default = profile.categories.default
    mapped.notes.append(
        Problem(
            f"item {item_code} (coding system {coding_system or 'none'}) is in neither the"
            f" profile's category mapping nor the chargemaster in force for {hospital_id}"
            f" on {day.isoformat()}: counted as {default.value}",
            item_at,
            0,
        )
    )
    return default


def _money(
    reader: _Reader, line: Segment
) -> tuple[Decimal, Decimal, Decimal, bool, dict[str, Location]]:
    """(quantity, unit price, amount, negative?, sources), sizes without their sign."""
    quantity_text, quantity_at = reader.find("quantity", line)
    extended_text, extended_at = reader.find("extended_amount", line)
    unit_text, unit_at = reader.find("unit_amount", line)
    quantity = number(quantity_text, quantity_at, "the quantity") if quantity_text else None
    extended = number(extended_text, extended_at, "the extended amount") if extended_text else None
    unit = number(unit_text, unit_at, "the unit amount") if unit_text else None
    negative = any(value is not None and value < 0 for value in (quantity, extended, unit))
    size = abs(quantity) if quantity is not None else Decimal(1)
    if size == 0:
        raise Refused("AE", Problem("the quantity must not be zero", quantity_at))
    sources = {"quantity": quantity_at, "unit_price": unit_at, "amount": extended_at}
    if extended is None and unit is None:
        raise Refused(
            "AE",
            Problem(
                "neither the extended amount nor the unit amount is given",
                extended_at,
                REQUIRED_FIELD_MISSING,
            ),
        )
    if unit is not None:
        unit = abs(unit)
        expected = (size * unit).quantize(CENT, rounding=ROUND_HALF_UP)
        if extended is not None and abs(extended) != expected:
            raise Refused(
                "AE",
                Problem(
                    f"the extended amount {abs(extended)} != quantity x unit amount"
                    f" ({size} x {unit} = {expected})",
                    extended_at,
                ),
            )
        amount = abs(extended) if extended is not None else expected
        if extended is None:
            sources["amount"] = unit_at
        return size, unit, amount, negative, sources
    assert extended is not None
    amount = abs(extended)
    with localcontext() as context:
        context.prec = 40
        exact = amount / size
    unit = exact.quantize(UNIT_PLACES, rounding=ROUND_HALF_UP)
    if (size * unit).quantize(CENT, rounding=ROUND_HALF_UP) != amount:
        raise Refused(
            "AE",
            Problem(
                f"the extended amount {amount} divided by the quantity {size} has no unit"
                " price of at most 4 decimal places; send the unit amount (FT1-12) too",
                extended_at,
            ),
        )
    sources["unit_price"] = extended_at
    return size, _plain(unit) if exact == unit else unit, amount, negative, sources


def _plain(value: Decimal) -> Decimal:
    """`value` without trailing zeros, never in exponent form (180, not 1.8E+2)."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def number(text: str, where: Location, what: str) -> Decimal:
    """An HL7 NM value (digits, one '.', an optional sign) as an exact Decimal."""
    if not _NUMBER.match(text):
        raise Refused("AE", Problem(f"{what} {text!r} is not a number (digits and one '.')", where))
    try:
        return Decimal(text)
    except InvalidOperation:
        raise Refused("AE", Problem(f"{what} {text!r} is not a number", where)) from None


def hl7_time(text: str, where: Location | None, zone: ZoneInfo) -> str:
    """An HL7 DTM (YYYYMMDD[HH[MM[SS[.S]]]][+/-ZZZZ]) as ISO-8601 with its offset; one
    without an offset is in `zone` (the hospital's)."""
    found = _TIME.match(text.strip())
    if found is None:
        raise Refused(
            "AE",
            Problem(
                f"{text!r} is not an HL7 time (YYYYMMDD[HHMM[SS]][+ZZZZ], e.g."
                " 20261201083000+0800)",
                where,
            ),
        )
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
        if offset:
            sign = -1 if offset[0] == "-" else 1
            shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
            stamped = moment.replace(tzinfo=timezone(sign * shift))
        else:
            stamped = moment.replace(tzinfo=zone)
    except ValueError as error:
        raise Refused("AE", Problem(f"{text!r} is not a valid time: {error}", where)) from None
    return stamped.isoformat()
