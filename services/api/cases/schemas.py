"""Case state on the wire (field names fixed by DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from services.alerting.alerts.schemas import Contributor


class CaseOut(BaseModel):
    hospital_id: str
    case_id: str
    status: Literal["open", "discharged"]
    department: str | None
    drg_code: str | None
    drg_name: str | None
    insurance_scheme: str | None
    standard_cost: str | None
    total_cost: str
    ratio: str | None
    level: Literal["unpriced", "none", "blue", "yellow", "red"]
    ratio_flag: Literal["high", "low"] | None
    cost_by_category: dict[str, str]
    top_contributors: list[Contributor]
    admitted_at: datetime | None
    discharged_at: datetime | None
    los_days: int | None
    avg_los_days: str | None
    events_applied: int
    last_event_at: datetime | None


class CaseList(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None
