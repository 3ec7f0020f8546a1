"""Alert records on the wire (field names fixed by DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.alerting.alerts.lifecycle import ActionKind, Decision, Overspend, Reason, Status
from services.casecost.events import printable


# one of the items that cost a case the most: the "why" of an alert
class Contributor(BaseModel):
    item_code: str
    item_name: str
    category: str
    quantity: str
    amount: str


class RuleName(BaseModel):
    """A rule's name in Chinese and English."""

    zh: str
    en: str


AlertKind = Literal["level", "forecast", "target", "rule"]
ALERT_KINDS: tuple[AlertKind, ...] = ("level", "forecast", "target", "rule")


class AlertOut(BaseModel):
    """An alert: `kind` level (the case changed level), forecast (its projection to
    discharge crossed red while its cost was below blue; `level` is then the level the
    projection reaches, `previous_level` the case's own, `transition` projected) or
    target (a department's pace against a target the insurance office set changed level:
    `case_id` is empty, `target_period` and `target_measure` name the target,
    `standard_cost` is the target, `total_cost` the measure so far, `ratio` what the level
    is decided on: the projection to the period's end over the target for total cost,
    the cost per case so far over the target for cost per case) or rule (a monitoring
    rule found something: `rule_id` and `rule_version` name it, `level` is its severity,
    `transition` raised, `rule_period` the period it is raised once for, `detail` what it
    found, `text_zh` and `text_en` say so; `case_id` is empty for a department rule;
    `standard_cost` and `ratio` are the case's, 0 while it is not priced)."""

    alert_id: str
    kind: AlertKind = "level"
    hospital_id: str
    case_id: str
    department: str | None
    drg_code: str | None
    level: Literal["none", "blue", "yellow", "red"]
    previous_level: Literal["none", "blue", "yellow", "red"]
    transition: Literal["escalated", "de-escalated", "resolved", "projected", "raised"]
    total_cost: str
    standard_cost: str
    ratio: str
    event_id: str
    occurred_at: datetime
    raised_at: datetime
    top_contributors: list[Contributor]
    # the projection to discharge a forecast alert was raised on (null on level alerts)
    projected_total: str | None = None
    projected_ratio: str | None = None
    # the target a target alert was raised on (null on case alerts)
    target_period: str | None = None
    target_measure: Literal["total_cost", "cost_per_case"] | None = None
    # the rule a rule alert was raised by, and what it found (null on other alerts)
    rule_id: str | None = None
    rule_version: int | None = None
    rule_name: RuleName | None = None
    rule_period: str | None = None
    detail: dict[str, Any] | None = None
    text_zh: str | None = None
    text_en: str | None = None


class AlertListItem(AlertOut):
    """An alert in the history, with where its lifecycle stands (see lifecycle.py)."""

    status: Status


class AlertList(BaseModel):
    items: list[AlertListItem]
    next_cursor: str | None


class RuleFindingCount(BaseModel):
    """What one monitoring rule found since a moment: how many findings, how many of
    them still with the department (open, acknowledged or returned), and its latest."""

    rule_id: str
    rule_name: RuleName | None
    level: str  # the latest finding's
    found: int
    open: int
    latest_raised_at: datetime


class RuleFindingCounts(BaseModel):
    since: datetime
    items: list[RuleFindingCount]


# --- the alert lifecycle ---------------------------------------------------------------


def _note_text(note: str | None) -> str | None:
    return None if note is None else printable(note, line_breaks=True)


# a note is shown to people (timeline, alert detail, the dashboard): lines of any script,
# nothing that displays other than it is stored, nothing a database cannot hold
Note = Annotated[str | None, Field(default=None, max_length=2000), AfterValidator(_note_text)]


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note = None


class ResolveIn(BaseModel):
    """Why the case costs what it does; `other` needs a note saying what."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason
    note: Note = None

    @model_validator(mode="after")
    def _other_says_why(self) -> ResolveIn:
        if self.reason == "other" and not (self.note and self.note.strip()):
            raise ValueError("note: required when the reason is other")
        return self


class ReviewIn(BaseModel):
    """The insurance office's decision; a rejection says what the department must fix."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    note: Note = None

    @model_validator(mode="after")
    def _rejection_says_why(self) -> ReviewIn:
        if self.decision == "rejected" and not (self.note and self.note.strip()):
            raise ValueError("note: required when the decision is rejected")
        return self


class Actor(BaseModel):
    identity_id: str
    name: str
    role: str


class ActionOut(BaseModel):
    """One recorded action: what, who, when, the note, and the status it moved between."""

    action: ActionKind
    reason: Reason | None
    overspend: Overspend | None  # the classification a resolve claims (reviewed or not)
    decision: Decision | None
    note: str | None
    from_status: Status
    to_status: Status
    actor: Actor
    acted_at: datetime


class AlertDetail(AlertOut):
    """An alert with its lifecycle status and every action taken on it, oldest first."""

    status: Status
    actions: list[ActionOut]


TimelineKind = Literal[
    "alert",  # the case changed level (escalated, de-escalated, back below every threshold)
    "acknowledged",
    "resolved",  # a resolution that closed the alert at once (unreasonable overspend)
    "submitted_for_review",  # a resolution the insurance office must check
    "review_approved",
    "review_rejected",
]


class TimelineEntry(BaseModel):
    kind: TimelineKind
    at: datetime
    alert_id: str
    level: Literal["none", "blue", "yellow", "red"]
    summary: str
    alert: AlertOut | None = None
    action: ActionOut | None = None


class CaseTimeline(BaseModel):
    """A case's alerts and the actions on them, oldest first."""

    hospital_id: str
    case_id: str
    entries: list[TimelineEntry]
