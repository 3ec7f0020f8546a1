"""Case state on the wire (field names fixed by DESIGN.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.alerting.alerts.schemas import Contributor

CaseOrder = Literal["ratio", "projected_ratio", "days_over_avg_stay", "total_cost"]


class CaseOut(BaseModel):
    hospital_id: str
    case_id: str
    status: Literal["open", "discharged"]
    department: str | None
    drg_code: str | None
    drg_name: str | None
    # the group's English name, where the catalogue that prices the case gives one
    drg_name_en: str | None = None
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
    # where the case is expected to stand at discharge (null without a standard or an
    # average stay; a discharged case's is what it cost)
    projected_total: str | None = None
    projected_ratio: str | None = None
    # los_days - avg_los_days: how far the stay (so far, for an open case) runs over the
    # DRG's average; negative while under it
    days_over_avg_stay: str | None = None


class Thresholds(BaseModel):
    blue: str
    yellow: str
    red: str


class DailyCost(BaseModel):
    day: date
    amount: str = Field(description="charges minus credits that occurred on this local day")
    cumulative: str


class DoctorCost(BaseModel):
    ordered_by: str | None = Field(description="null: cost lines that named no orderer")
    amount: str


class CaseDetail(CaseOut):
    """One case with what its page shows: the thresholds in force, the cost per local day
    of the stay, and the cost per orderer."""

    thresholds: Thresholds
    daily_costs: list[DailyCost]
    cost_by_doctor: list[DoctorCost]


class CaseList(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None


class LevelSummary(BaseModel):
    cases: int
    total_cost: str
    standard_cost: str


class DepartmentSummary(BaseModel):
    department: str | None
    open_cases: int
    total_cost: str
    standard_cost: str
    projected_total: str
    projected_overspend: str


class OpenCasesSummary(BaseModel):
    """The open cases of a hospital (in the caller's scope) by level and by department."""

    by_level: dict[str, LevelSummary]
    money_at_risk: str
    departments: list[DepartmentSummary]
