"""A small hospital for the browser tests: cases at every level in two departments, their
stays charged day by day (bed, nursing, drugs, labs, then the big item), posted through
the API as the hospital's systems post them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

HOSPITAL = "H001"
ZONE = ZoneInfo("Asia/Shanghai")
# the sample catalogue's standards for the employee scheme (weight x 12252.70)
STANDARD = {
    "FM15": Decimal("40400.83"),
    "FR13": Decimal("18136.55"),
    "ES31": Decimal("15329.35"),
    "ES33": Decimal("10652.50"),
}


def _moment(days_ago: float) -> str:
    return (datetime.now(ZONE) - timedelta(days=days_ago)).isoformat(timespec="seconds")


def admitted(case: str, drg: str, department: str, days_ago: float) -> dict[str, Any]:
    return {
        "event_id": f"{case}-adm",
        "type": "admitted",
        "hospital_id": HOSPITAL,
        "case_id": case,
        "occurred_at": _moment(days_ago),
        "department": department,
        "drg_code": drg,
        "insurance_scheme": "employee",
        "admitted_at": _moment(days_ago),
    }


def charge(
    case: str,
    n: str,
    amount: Decimal,
    *,
    department: str,
    days_ago: float,
    item: tuple[str, str, str] = ("C0451", "Drug-eluting coronary stent", "consumable"),
    doctor: str | None = "D1024",
) -> dict[str, Any]:
    code, name, category = item
    event: dict[str, Any] = {
        "event_id": f"{case}-{n}",
        "type": "charge",
        "hospital_id": HOSPITAL,
        "case_id": case,
        "occurred_at": _moment(days_ago),
        "department": department,
        "item_code": code,
        "item_name": name,
        "category": category,
        "quantity": "1",
        "unit_price": str(amount),
        "amount": str(amount),
    }
    if doctor:
        event["ordered_by"] = doctor
    return event


def share(drg: str, fraction: str) -> Decimal:
    return (STANDARD[drg] * Decimal(fraction)).quantize(Decimal("0.01"))


def a_stay(case: str, drg: str, department: str, fraction: str) -> list[dict[str, Any]]:
    """A case admitted three days ago whose charges over the stay reach `fraction` of its
    standard: bed and nursing each day, drugs, labs, and the big item last."""
    total = share(drg, fraction)
    daily = [
        (("B001", "Ward bed, standard", "bed"), Decimal("0.04")),
        (("N002", "Level I nursing", "nursing"), Decimal("0.03")),
        (("D3301", "Ticagrelor 90 mg", "drug"), Decimal("0.08")),
        (("L1102", "Troponin I", "lab"), Decimal("0.05")),
    ]
    events = [admitted(case, drg, department, 3.2)]
    spent = Decimal("0")
    for day in range(3):
        for index, (item, part) in enumerate(daily):
            amount = (total * part).quantize(Decimal("0.01"))
            spent += amount
            doctor = "D1024" if index % 2 == 0 else "D2071"
            events.append(
                charge(
                    case,
                    f"d{day}i{index}",
                    amount,
                    department=department,
                    days_ago=3 - day,
                    item=item,
                    doctor=doctor,
                )
            )
    events.append(charge(case, "main", total - spent, department=department, days_ago=0.5))
    return events
