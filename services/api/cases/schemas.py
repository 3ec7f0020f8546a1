"""Case state on the wire (field names fixed by DESIGN.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.alerting.alerts.schemas import Contributor, RuleName

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


class CategoryExplained(BaseModel):
    category: str
    amount: str
    share: str | None = Field(description="of the case's cost (null while it has no cost)")
    typical_share: str | None = Field(description="the DRG's typical share (null without one)")
    difference: str | None = Field(description="share - typical_share, in share points")
    excess: str | None = Field(
        description="amount - typical_share x total: the money beyond the typical share"
    )


class ItemExplained(Contributor):
    share: str | None = Field(description="of the case's cost")


class DoctorExplained(BaseModel):
    ordered_by: str
    amount: str
    share: str | None = Field(description="of the case's cost")


class Acceleration(BaseModel):
    day: date
    amount: str = Field(description="that local day's charges minus credits")
    baseline: str = Field(description="the mean per day of the stay's days before it")


class Driver(BaseModel):
    kind: Literal["category", "item", "day", "stay", "largest_category"]
    category: str | None = None
    item_code: str | None = None
    day: date | None = None


class RuleFindingExplained(BaseModel):
    """A rule alert of the case: the rule, its version and name, the severity, what it found."""

    alert_id: str
    rule_id: str
    rule_version: int
    rule_name: RuleName
    severity: Literal["blue", "yellow", "red"] = Field(description="the rule's severity")
    level: Literal["blue", "yellow", "red"] = Field(
        description="the same: the alert's level, as the alert lists call it"
    )
    text_zh: str
    text_en: str
    raised_at: datetime = Field(description="when the worker raised it")
    occurred_at: datetime = Field(description="when the event that raised it occurred")


class Explanation(BaseModel):
    """Why the case costs what it does (the rules: services/casecost/explain.py, README
    "Why a case costs what it does"), worked out from the case as it stands when served."""

    typical_source: Literal["hospital"] | None = Field(
        description="hospital: the typical mix is that of this hospital's discharged cases"
        " of the DRG in the last 365 days; null: too few of them (no typical mix)"
    )
    typical_cases: int | None = Field(description="how many cases the typical mix is from")
    categories: list[CategoryExplained]
    top_items: list[ItemExplained]
    top_doctors: list[DoctorExplained]
    accelerated: Acceleration | None = Field(
        description="the first day, after the first two of the stay, whose charges exceed"
        " twice the mean of the days before it; null when no day did"
    )
    driver: Driver | None = Field(description="the main driver (null while there is no cost)")
    rule_findings: list[RuleFindingExplained] = Field(
        default_factory=list,
        description="the rule alerts of the case the caller may read, newest first, at most 10",
    )
    rule_findings_total: int = Field(default=0, description="how many rule alerts in all")
    summary_zh: str = Field(
        description="the main driver; then, with rule alerts, the most severe of them"
    )
    summary_en: str


class PublishedCase(CaseOut):
    """The case contract (schemas/case.v1.json): a case as lists and the single case
    serve it; the single case adds its explanation."""

    model_config = ConfigDict(title="CaseOut")

    explanation: Explanation | None = Field(
        default=None,
        description="on GET /v1/hospitals/{h}/cases/{c} only (lists leave it out)",
    )


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
    explanation: Explanation


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
