"""The weekly department briefing on the wire (decimals as strings)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from services.alerting.alerts.lifecycle import Status
from services.alerting.alerts.schemas import Contributor, RuleName
from services.api.indicators.schemas import IndicatorGroup, IndicatorsOut


class RedCase(BaseModel):
    """A case that crossed into red during the week, what drove it then, and where it is now."""

    case_id: str
    department: str | None
    drg_code: str | None
    drg_name: str | None
    reached_red_at: datetime
    # the alert's figures at the crossing, and its top contributors: the cause
    total_cost_at_red: str
    standard_cost: str
    ratio_at_red: str
    causes: list[Contributor]
    # the case now
    status: str | None
    total_cost: str | None
    ratio: str | None
    level: str | None
    # how the red alert was answered (null: nobody has acted on it)
    alert_status: Status
    resolution_reason: str | None
    resolution_note: str | None


class BriefingAlert(BaseModel):
    """An alert raised during the week and how it stands."""

    alert_id: str
    # level; forecast: the projection to discharge crossed red; target: the department's
    # pace against its target (case_id empty, target_period and target_measure set); rule:
    # a monitoring rule's finding (the rule, its version and name, the period it is
    # raised once for, the sentences saying what it found; case_id empty for a
    # department rule)
    kind: str
    case_id: str
    target_period: str | None = None
    target_measure: str | None = None
    rule_id: str | None = None
    rule_version: int | None = None
    rule_name: RuleName | None = None
    rule_period: str | None = None
    text_zh: str | None = None
    text_en: str | None = None
    department: str | None
    drg_code: str | None
    level: str
    previous_level: str
    transition: str
    ratio: str
    raised_at: datetime
    status: Status
    # the last action on it: who did what, with which reason, decision and note
    last_action: str | None
    acted_by: str | None
    acted_at: datetime | None
    reason: str | None
    decision: str | None
    note: str | None


class AlertTally(BaseModel):
    raised: dict[str, int]  # escalations by level
    by_status: dict[str, int]  # every alert of the week by where it stands
    resolutions: dict[str, int]  # resolved or under review, by the reason given


class WeeklyBriefing(BaseModel):
    hospital_id: str
    department: str | None  # null: every department in the caller's scope
    department_name_zh: str | None
    department_name_en: str | None
    week: str  # ISO week, e.g. 2026-W48
    from_: date = Field(serialization_alias="from")
    to: date
    timezone: str
    generated_at: datetime
    indicators: IndicatorsOut
    drgs: list[IndicatorGroup]
    red_cases: list[RedCase]
    alerts: list[BriefingAlert]
    alert_tally: AlertTally

    model_config = ConfigDict(populate_by_name=True)
