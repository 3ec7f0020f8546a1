"""Builders for case events and price books, shared by the unit and agent tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services.casecost.events import Event, parse_event
from services.casecost.pricing import Catalogue, DrgGroup, PriceBook, Thresholds

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOSPITAL, CASE = "H1", "C1"


def book(
    *catalogues: Catalogue, thresholds: dict[tuple[str, str], Thresholds] | None = None
) -> PriceBook:
    """A price book; by default one catalogue where D1 costs 10000.00 for `employee`."""
    return PriceBook(
        version=1, catalogues=catalogues or (catalogue(),), thresholds=thresholds or {}
    )


def catalogue(
    catalogue_id: int = 1,
    effective_from: date = date(2026, 1, 1),
    hospital_id: str | None = None,
    base_rates: dict[str, str] | None = None,
    groups: dict[str, tuple[str, str | None]] | None = None,
) -> Catalogue:
    """groups: drg_code -> (weight, explicit standard_cost or None)."""
    rates = base_rates or {"employee": "10000.00", "resident": "8000.00"}
    spec = groups or {"D1": ("1", None), "D2": ("2", None), "OVR": ("9", "5000.00")}
    return Catalogue(
        catalogue_id=catalogue_id,
        name=f"catalogue {catalogue_id}",
        effective_from=effective_from,
        base_rates={scheme: Decimal(rate) for scheme, rate in rates.items()},
        groups={
            code: DrgGroup(
                drg_code=code,
                name=f"group {code}",
                weight=Decimal(weight),
                avg_los_days=Decimal("7.5"),
                standard_cost=None if override is None else Decimal(override),
            )
            for code, (weight, override) in spec.items()
        },
        hospital_id=hospital_id,
    )


def at(day: int = 1, hour: int = 10, minute: int = 0, month: int = 3) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def raw(kind: str, event_id: str, occurred_at: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": kind,
        "hospital_id": fields.pop("hospital_id", HOSPITAL),
        "case_id": fields.pop("case_id", CASE),
        "occurred_at": occurred_at or at(),
        **fields,
    }


def admitted_raw(
    event_id: str = "adm",
    drg_code: str | None = "D1",
    scheme: str = "employee",
    department: str = "CARD",
    admitted_at: str | None = None,
    occurred_at: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    extra = {} if drg_code is None else {"drg_code": drg_code}
    return raw(
        "admitted",
        event_id,
        occurred_at or admitted_at or at(1, 8),
        department=department,
        insurance_scheme=scheme,
        admitted_at=admitted_at or at(1, 8),
        **extra,
        **fields,
    )


def cost_raw(
    event_id: str,
    amount: str,
    kind: str = "charge",
    category: str = "drug",
    item_code: str = "ITEM",
    occurred_at: str | None = None,
    department: str = "CARD",
    **fields: Any,
) -> dict[str, Any]:
    """A cost line of quantity 1 at `amount` (so the amount check always holds)."""
    return raw(
        kind,
        event_id,
        occurred_at or at(2),
        department=department,
        item_code=item_code,
        item_name=f"name of {item_code}",
        category=category,
        quantity="1",
        unit_price=amount,
        amount=amount,
        **fields,
    )


def admitted(**kwargs: Any) -> Event:
    return parse_event(admitted_raw(**kwargs))


def charge(event_id: str, amount: str, **kwargs: Any) -> Event:
    return parse_event(cost_raw(event_id, amount, **kwargs))


def credit(event_id: str, amount: str, **kwargs: Any) -> Event:
    return parse_event(cost_raw(event_id, amount, kind="credit", **kwargs))


def drg_assigned(event_id: str, drg_code: str, occurred_at: str | None = None) -> Event:
    return parse_event(raw("drg_assigned", event_id, occurred_at or at(3), drg_code=drg_code))


def transferred(event_id: str, department: str, occurred_at: str | None = None) -> Event:
    return parse_event(raw("transferred", event_id, occurred_at or at(3), department=department))


def discharged(event_id: str = "dis", discharged_at: str | None = None) -> Event:
    when = discharged_at or at(9)
    return parse_event(raw("discharged", event_id, when, discharged_at=when))


def discharge_cancelled(
    event_id: str = "undis", occurred_at: str | None = None, **fields: Any
) -> Event:
    return parse_event(raw("discharge_cancelled", event_id, occurred_at or at(9, 11), **fields))
