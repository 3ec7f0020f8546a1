"""The running state of one inpatient case, and its plain-data (JSON-ready) form."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from operator import attrgetter
from typing import Any, Protocol

import orjson

from services.casecost.pricing import (
    AlertLevel,
    CaseLevel,
    DrgGroup,
    PriceBook,
    Standard,
    Thresholds,
    ratio_of,
)

MAX_ALERTS_KEPT = 20  # older alerts are already projected; these are kept for redelivery
TOP_CONTRIBUTORS = 5

# (priority, occurred_at as UTC ISO, event_id): the newest attribute wins whatever
# the arrival order, so that late and out-of-order events give one final state.
Stamp = tuple[int, str, str]


def event_digest(event_id: str) -> str:
    """A short, stable fingerprint of an event id, kept per case to refuse duplicates."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


@dataclass(slots=True)
class ItemCost:
    item_code: str
    item_name: str
    category: str
    quantity: Decimal
    amount: Decimal

    def to_wire(self) -> list[str]:
        return [self.item_name, self.category, str(self.quantity), str(self.amount)]


@dataclass(frozen=True, slots=True)
class Pricing:
    """What a case was priced on, and the answer (see apply._pricing)."""

    price_book: PriceBook
    drg_code: str | None
    scheme: str | None
    # the moment the pricing day is taken from (admission, or the first event until then)
    moment: datetime | None
    on: date | None
    group: DrgGroup | None
    standard: Standard | None
    thresholds: Thresholds


@dataclass(slots=True)
class Memo:
    """Answers derived from a case's state, kept so that they are not worked out again.

    Not part of the state: never in its wire form or its equality, and dropping it (a
    state decoded afresh has an empty one) changes no result, only the time taken.
    Whoever changes what an entry was derived from drops that entry (apply.py does).
    """

    # what the case was last priced on (price book, DRG, scheme, day) and the answer
    pricing: Pricing | None = None
    # each item's changelog form until the item changes: a large case rewrites all its
    # items with every batch, most of them untouched
    item_wire: dict[str, list[str]] = field(default_factory=dict)
    # local days by quarter hour of UTC time (every zone's midnight falls on a quarter
    # hour, so a quarter hour lies within one local day), for the zone they were taken in
    days_zone: tzinfo | None = None
    days: dict[int, tuple[date, str]] = field(default_factory=dict)
    # the moment last looked up there and its day: the rules ask again for the same one
    line_moment: datetime | None = None
    line_day: tuple[date, str] | None = None
    # the latest event's moment and its local day
    latest_moment: datetime | None = None
    latest_day: date | None = None


@dataclass(slots=True)
class CaseState:
    hospital_id: str
    case_id: str
    department: str | None = None
    department_stamp: Stamp | None = None
    drg_code: str | None = None
    drg_stamp: Stamp | None = None
    insurance_scheme: str | None = None
    scheme_stamp: Stamp | None = None
    admitted_at: datetime | None = None
    admitted_stamp: Stamp | None = None
    discharged_at: datetime | None = None
    # the discharge or cancellation in force (apply._fold_discharge); under a stamp, no
    # discharged_at means the discharge was cancelled
    discharged_stamp: Stamp | None = None
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    total_cost: Decimal = Decimal("0")
    cost_by_category: dict[str, Decimal] = field(default_factory=dict)
    # net cost per local day of the cost lines' occurred_at (ISO dates), and per orderer
    # ("" for lines that name none)
    cost_by_day: dict[str, Decimal] = field(default_factory=dict)
    cost_by_orderer: dict[str, Decimal] = field(default_factory=dict)
    items: dict[str, ItemCost] = field(default_factory=dict)
    events_applied: int = 0
    seen: set[str] = field(default_factory=set)
    # ledger order: the next per-case sequence number to apply, and events that arrived
    # ahead of a gap (by sequence number, as wire data) with the moment the wait began
    next_sequence: int = 1
    held: dict[int, dict[str, Any]] = field(default_factory=dict)
    held_since: datetime | None = None
    # priced view, recomputed after every event
    drg_name: str | None = None
    standard_cost: Decimal | None = None
    avg_los_days: Decimal | None = None
    ratio: Decimal | None = None
    level: CaseLevel = "unpriced"
    ratio_flag: str | None = None
    # the projection to discharge (forecast.project_to_discharge), after every event
    projected_total: Decimal | None = None
    # alerting memory
    alert_level: AlertLevel = "none"
    alert_seq: int = 0
    # whether the current forecast episode (the run of events whose projection stays
    # above red) has raised its forecast alert, and how many forecast alerts were raised
    forecast_fired: bool = False
    forecast_seq: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # what the case rules remember of the case (rules.CaseMemory, or its plain form as
    # decoded until a rule next looks at it; None until one has)
    rule_memory: RuleMemory | dict[str, Any] | None = None
    memo: Memo = field(default_factory=Memo, compare=False, repr=False)

    @property
    def projected_ratio(self) -> Decimal | None:
        """projected_total / standard_cost to four places (worked out when asked for)."""
        if self.projected_total is None or self.standard_cost is None:
            return None
        return ratio_of(self.projected_total, self.standard_cost)

    @property
    def status(self) -> str:
        return "discharged" if self.discharged_at is not None else "open"

    def top_contributors(self, limit: int = TOP_CONTRIBUTORS) -> list[dict[str, str]]:
        """The items that cost the most, largest first: the 'why' of an alert."""
        # by amount, largest first, then code: two stable sorts on plain attributes
        ranked = sorted(self.items.values(), key=attrgetter("item_code"))
        ranked.sort(key=attrgetter("amount"), reverse=True)
        return [
            {
                "item_code": item.item_code,
                "item_name": item.item_name,
                "category": item.category,
                "quantity": str(item.quantity),
                "amount": str(item.amount),
            }
            for item in ranked[:limit]
            if item.amount > 0
        ]

    def to_dict(self) -> dict[str, Any]:
        """The state as plain (JSON-ready) data, by field name."""
        return dict(zip(STATE_FIELDS, self._values(), strict=True))

    def to_wire(self) -> list[Any]:
        """The state's changelog form: STATE_FORM, then the values of STATE_FIELDS."""
        return [STATE_FORM, *self._values()]

    def _values(self) -> tuple[Any, ...]:
        # in the order of STATE_FIELDS
        return (
            _iso(self.held_since),
            self.hospital_id,
            self.case_id,
            self.department,
            self.department_stamp,
            self.drg_code,
            self.drg_stamp,
            self.insurance_scheme,
            self.scheme_stamp,
            _iso(self.admitted_at),
            self.admitted_stamp,
            _iso(self.discharged_at),
            self.discharged_stamp,
            _iso(self.first_event_at),
            _iso(self.last_event_at),
            str(self.total_cost),
            {k: str(v) for k, v in sorted(self.cost_by_category.items())},
            _amounts(self.cost_by_day),
            _amounts(self.cost_by_orderer),
            self._items_wire(),
            self.events_applied,
            sorted(self.seen),
            self.next_sequence,
            {str(sequence): wire for sequence, wire in sorted(self.held.items())},
            self.drg_name,
            _str(self.standard_cost),
            _str(self.avg_los_days),
            _str(self.ratio),
            self.level,
            self.ratio_flag,
            _str(self.projected_total),
            _str(self.projected_ratio),
            self.alert_level,
            self.alert_seq,
            self.forecast_fired,
            self.forecast_seq,
            self.alerts,
            _rule_memory(self.rule_memory),
        )

    def _items_wire(self) -> dict[str, list[str]]:
        known = self.memo.item_wire
        wire = {}
        for code, item in self.items.items():
            form = known.get(code)
            if form is None:
                form = known[code] = item.to_wire()
            wire[code] = form
        return wire

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseState:
        items = data["items"]
        return cls(
            hospital_id=data["hospital_id"],
            case_id=data["case_id"],
            department=data.get("department"),
            department_stamp=_stamp(data.get("department_stamp")),
            drg_code=data.get("drg_code"),
            drg_stamp=_stamp(data.get("drg_stamp")),
            insurance_scheme=data.get("insurance_scheme"),
            scheme_stamp=_stamp(data.get("scheme_stamp")),
            admitted_at=_dt(data.get("admitted_at")),
            admitted_stamp=_stamp(data.get("admitted_stamp")),
            discharged_at=_dt(data.get("discharged_at")),
            discharged_stamp=_stamp(data.get("discharged_stamp")),
            first_event_at=_dt(data.get("first_event_at")),
            last_event_at=_dt(data.get("last_event_at")),
            total_cost=Decimal(data["total_cost"]),
            cost_by_category={k: Decimal(v) for k, v in data["cost_by_category"].items()},
            # states written before these were kept decode with none recorded
            cost_by_day=_decimals(data.get("cost_by_day")),
            cost_by_orderer=_decimals(data.get("cost_by_orderer")),
            items={
                code: ItemCost(code, wire[0], wire[1], Decimal(wire[2]), Decimal(wire[3]))
                for code, wire in items.items()
            },
            events_applied=data["events_applied"],
            seen=set(data["seen"]),
            next_sequence=int(data.get("next_sequence", 1)),
            held={int(sequence): wire for sequence, wire in data.get("held", {}).items()},
            held_since=_dt(data.get("held_since")),
            drg_name=data.get("drg_name"),
            standard_cost=_dec(data.get("standard_cost")),
            avg_los_days=_dec(data.get("avg_los_days")),
            ratio=_dec(data.get("ratio")),
            level=data["level"],
            ratio_flag=data.get("ratio_flag"),
            projected_total=_dec(data.get("projected_total")),
            alert_level=data["alert_level"],
            alert_seq=data["alert_seq"],
            forecast_fired=bool(data.get("forecast_fired", False)),
            forecast_seq=int(data.get("forecast_seq", 0)),
            alerts=list(data["alerts"]),
            rule_memory=data.get("rule_memory"),
            memo=Memo(item_wire=dict(items)),
        )


# The changelog form of a state (CaseState.to_wire): a JSON array of STATE_FORM and then
# the values of these fields in this order. The plain-data form's names were half the
# bytes of a small case, held by the table for every open case, written and read back
# with every change. `held_since` comes first, so that whether a case waits on a ledger
# gap shows in the bytes' first few characters (`waits_on_gap`). A field added later
# goes at the end: a shorter array from an older worker decodes as a state without it.
STATE_FORM = 2
STATE_FIELDS: tuple[str, ...] = (
    "held_since",
    "hospital_id",
    "case_id",
    "department",
    "department_stamp",
    "drg_code",
    "drg_stamp",
    "insurance_scheme",
    "scheme_stamp",
    "admitted_at",
    "admitted_stamp",
    "discharged_at",
    "discharged_stamp",
    "first_event_at",
    "last_event_at",
    "total_cost",
    "cost_by_category",
    "cost_by_day",
    "cost_by_orderer",
    "items",
    "events_applied",
    "seen",
    "next_sequence",
    "held",
    "drg_name",
    "standard_cost",
    "avg_los_days",
    "ratio",
    "level",
    "ratio_flag",
    "projected_total",
    "projected_ratio",
    "alert_level",
    "alert_seq",
    "forecast_fired",
    "forecast_seq",
    "alerts",
    "rule_memory",
)
_NOT_WAITING = b"[%d,null," % STATE_FORM


def state_data(stored: bytes) -> dict[str, Any]:
    """A case state from the changelog (either form) as plain data, by field name.

    Reads the array form (STATE_FORM) and the object form that workers wrote before it,
    so that a worker upgraded over an existing changelog reads back what it finds.
    """
    data = orjson.loads(stored)
    if isinstance(data, dict):
        return data
    if not isinstance(data, list) or not data or data[0] != STATE_FORM:
        raise ValueError("not a case state")
    return dict(zip(STATE_FIELDS, data[1:], strict=False))


def waits_on_gap(stored: bytes) -> bool:
    """Whether a stored state may hold events waiting on a ledger gap (no decoding:
    False only when certainly not)."""
    return not stored.startswith(_NOT_WAITING) and b'"held_since":null' not in stored


class RuleMemory(Protocol):
    """What the case rules keep of a case (services/casecost/rules.py, CaseMemory)."""

    def to_dict(self) -> dict[str, Any]: ...


def _rule_memory(memory: RuleMemory | dict[str, Any] | None) -> dict[str, Any] | None:
    return memory if memory is None or isinstance(memory, dict) else memory.to_dict()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _amounts(values: dict[str, Decimal]) -> dict[str, str]:
    return {key: str(amount) for key, amount in sorted(values.items())}


def _decimals(values: dict[str, str] | None) -> dict[str, Decimal]:
    return {} if not values else {key: Decimal(amount) for key, amount in values.items()}


def _stamp(value: Any) -> Stamp | None:
    return None if value is None else (int(value[0]), str(value[1]), str(value[2]))
