"""Alert records on the wire (field names fixed by DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from services.api.cases.schemas import Contributor


class AlertOut(BaseModel):
    alert_id: str
    hospital_id: str
    case_id: str
    department: str | None
    drg_code: str | None
    level: Literal["none", "blue", "yellow", "red"]
    previous_level: Literal["none", "blue", "yellow", "red"]
    transition: Literal["escalated", "de-escalated", "resolved"]
    total_cost: str
    standard_cost: str
    ratio: str
    event_id: str
    occurred_at: datetime
    raised_at: datetime
    top_contributors: list[Contributor]


class AlertList(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None
