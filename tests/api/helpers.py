"""Event builders for the API tests (valid v1 events unless a test breaks them)."""

from __future__ import annotations

from typing import Any

HOSPITAL = "H001"
# operator keys for production-mode tests: random, as the key rules ask (never used elsewhere)
OPERATOR_KEY = "dN3aLkk6cuDiPA3gi4GlJZsTzjFVEgw-v0FjeUxoLJQ"
OTHER_OPERATOR_KEY = "IZDLdyHRVO8Rt9WPEmvpF_2N9KhsCUM0F5h8ArbM6Zo"


def admitted(event_id: str, case_id: str = "C1", **over: Any) -> dict[str, Any]:
    event = {
        "event_id": event_id,
        "type": "admitted",
        "hospital_id": HOSPITAL,
        "case_id": case_id,
        "occurred_at": "2026-03-02T08:00:00+08:00",
        "department": "CARD",
        "drg_code": "FM15",
        "insurance_scheme": "employee",
        "admitted_at": "2026-03-02T08:00:00+08:00",
    }
    event.update(over)
    return event


def charge(event_id: str, case_id: str = "C1", **over: Any) -> dict[str, Any]:
    event = {
        "event_id": event_id,
        "type": "charge",
        "hospital_id": HOSPITAL,
        "case_id": case_id,
        "occurred_at": "2026-03-02T09:00:00+08:00",
        "department": "CARD",
        "item_code": "LAB001",
        "item_name": "Blood panel",
        "category": "lab",
        "quantity": "1",
        "unit_price": "0.10",
        "amount": "0.10",
    }
    event.update(over)
    return event
