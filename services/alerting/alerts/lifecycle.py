"""The alert lifecycle: statuses, resolution reasons, and which transitions are allowed.

Pure functions over plain values; the service (actions.py) loads and records, this decides.

State machine (one per alert; an alert with no action is `open`):

    open ──acknowledge──▶ acknowledged
    open / acknowledged / returned ──resolve(unreasonable)──▶ resolved
    open / acknowledged / returned ──resolve(reasonable or other)──▶ under_review
    under_review ──review(approved)──▶ resolved      (reasonable overspend, may be appealed)
    under_review ──review(rejected)──▶ returned      (back to the department, with the note)

- Acknowledging is optional: whoever knows the reason can resolve straight away.
- A resolution claiming reasonable overspend (合理超支: new technique, public health
  emergency, price change) or giving `other` (note required) is checked by the insurance
  office before it counts; one admitting unreasonable overspend (不合理超支: over-treatment,
  management gap) closes at once, since nobody disputes an admission.
- `resolved` is final. Anything else is refused with 409, naming the current status.
- An alert at level `none` (the case fell back below every threshold) has no overspend to
  explain: it can be acknowledged but not resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from services.alerting.exceptions import InvalidTransition
from services.casecost.pricing import LEVEL_RANK

Status = Literal["open", "acknowledged", "under_review", "returned", "resolved"]
STATUSES: tuple[Status, ...] = get_args(Status)
ActionKind = Literal["acknowledge", "resolve", "review"]
ReasonableReason = Literal["new_technique", "public_health_emergency", "price_change"]
UnreasonableReason = Literal["over_treatment", "management_gap"]
Reason = Literal[ReasonableReason, UnreasonableReason, Literal["other"]]
REASONABLE: frozenset[str] = frozenset(get_args(ReasonableReason))
UNREASONABLE: frozenset[str] = frozenset(get_args(UnreasonableReason))
Decision = Literal["approved", "rejected"]
Overspend = Literal["reasonable", "unreasonable"]


@dataclass(frozen=True, slots=True)
class Acknowledge:
    pass


@dataclass(frozen=True, slots=True)
class Resolve:
    reason: Reason


@dataclass(frozen=True, slots=True)
class Review:
    decision: Decision


Command = Acknowledge | Resolve | Review


def needs_review(reason: Reason) -> bool:
    """Only an admitted unreasonable overspend closes without the insurance office."""
    return reason not in UNREASONABLE


def next_status(status: Status, command: Command, *, alert_level: str) -> Status:
    """The status after `command`, or InvalidTransition naming the current status."""
    match command:
        case Acknowledge():
            if status == "open":
                return "acknowledged"
            raise InvalidTransition(
                f"the alert is {status}; only an open alert can be acknowledged", status
            )
        case Resolve(reason=reason):
            if status not in ("open", "acknowledged", "returned"):
                raise InvalidTransition(
                    f"the alert is {status}; only an open, acknowledged or returned alert"
                    " can be resolved",
                    status,
                )
            if alert_level == "none":
                raise InvalidTransition(
                    f"the alert is {status} at level none (the case is below every threshold);"
                    " there is no overspend to resolve",
                    status,
                )
            return "under_review" if needs_review(reason) else "resolved"
        case Review(decision=decision):
            if status != "under_review":
                raise InvalidTransition(
                    f"the alert is {status}; only a resolution under review can be reviewed",
                    status,
                )
            return "resolved" if decision == "approved" else "returned"


def as_status(value: str) -> Status:
    """A status read back from storage."""
    for status in STATUSES:
        if status == value:
            return status
    raise ValueError(f"not an alert status: {value}")


def status_after(statuses: Sequence[Status]) -> Status:
    """The current status given the `to_status` of each recorded action, in order."""
    return statuses[-1] if statuses else "open"


# --- the acknowledged level of a case, for the notifier ---------------------------------


@dataclass(frozen=True, slots=True)
class AlertMark:
    """One alert of a case, in the order raised: its level and whether anyone acted on it."""

    level: str
    acted: bool


def acknowledged_level_of(alerts: Sequence[AlertMark]) -> str | None:
    """The highest level acted on (acknowledged, resolved or reviewed) in the current episode.

    An episode is the run of alerts since the case last stood at level `none` (below every
    threshold): a de-escalation within it (red -> yellow) does not end it, a return below
    every threshold does. Acting on an alert of level L acknowledges L (and everything
    under it) for the rest of the episode; acting on an alert of an earlier episode counts
    for nothing now. None when nothing in the current episode was acted on.
    """
    start = 0
    for index, alert in enumerate(alerts):
        if alert.level == "none":
            start = index + 1
    acted = [alert.level for alert in alerts[start:] if alert.acted and alert.level in LEVEL_RANK]
    return max(acted, key=LEVEL_RANK.__getitem__) if acted else None


def is_news(level: str, acknowledged_level: str | None) -> bool:
    """Whether an alert at `level` tells the case's people something not yet acknowledged.

    Further escalation of an acknowledged case notifies; a repeat of a level at or below
    the acknowledged one does not.
    """
    if acknowledged_level is None:
        return True
    return LEVEL_RANK[level] > LEVEL_RANK[acknowledged_level]
