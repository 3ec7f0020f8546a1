"""Who gets which alert, and when to try again: pure functions over plain values.

Routing follows DESIGN.md: blue to the department head; yellow and red also to the
insurance office. An alert's severity is the higher of its level and previous level,
so a de-escalation or resolution reaches whoever was told of the escalation. A forecast
alert's level is red (the level its projection reaches), so it goes where red alerts go,
unless a subscription names the kinds it wants. A rule alert's level is the rule's
severity, and that alone decides: its previous level is only where the case stood when
the rule found something (a blue finding on a red case is a blue finding).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

from services.access.principal import Principal, Role
from services.alerting.alerts.lifecycle import is_news
from services.casecost.pricing import LEVEL_RANK

MinLevel = Literal["blue", "yellow", "red"]
DEFAULT_MIN_LEVEL: dict[Role, MinLevel] = {
    "department_head": "blue",
    "insurance_office": "yellow",
    "hospital_system": "blue",
    "admin": "blue",
}
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class AlertFacts:
    """What routing needs to know of an alert."""

    alert_id: str
    hospital_id: str
    department: str | None
    level: str
    previous_level: str
    transition: str = "escalated"
    kind: str = "level"
    # the highest level of the case someone acknowledged (or resolved) in its current
    # episode before this alert, if any (services/api/alerts/actions.acknowledged_level)
    acknowledged_level: str | None = None


@dataclass(frozen=True)
class Route:
    """A subscription's filters, as stored."""

    hospitals: frozenset[str]
    departments: frozenset[str]
    min_level: str
    blue_digest: bool
    # alert kinds wanted; empty: every kind
    kinds: frozenset[str] = frozenset()


def severity(alert: AlertFacts) -> str:
    """The higher of the alert's level and its previous level (a rule alert: its level)."""
    if alert.kind == "rule":
        return alert.level
    return max(alert.level, alert.previous_level, key=lambda level: LEVEL_RANK[level])


def is_deliverable(alert: AlertFacts, route: Route, owner: Principal) -> bool:
    """The one place that decides whether a subscription is sent an alert.

    The owner must be able to read it, it must pass the subscription's filters, its
    severity must reach the subscription's minimum level, and an escalation must be news:
    a case someone acknowledged at this level or above is not notified again for it
    (a further escalation is; de-escalations and resolutions always are).
    """
    if alert.transition == "escalated" and not is_news(alert.level, alert.acknowledged_level):
        return False
    if not owner.sees_department(alert.hospital_id, alert.department):
        return False
    if route.hospitals and alert.hospital_id not in route.hospitals:
        return False
    if route.departments and alert.department not in route.departments:
        return False
    if route.kinds and alert.kind not in route.kinds:
        return False
    return LEVEL_RANK[severity(alert)] >= LEVEL_RANK[route.min_level]


def goes_to_digest(alert: AlertFacts, route: Route) -> bool:
    """Blue-severity alerts of a digest subscription are gathered, not sent one by one."""
    return route.blue_digest and severity(alert) == "blue"


def delivery_id(subscription_id: str, alert_id: str) -> str:
    """The webhook-id of an alert's message to a subscription: the same on every fan-out."""
    digest = hashlib.sha256(f"{subscription_id}/{alert_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def digest_delivery_id(subscription_id: str, alert_seqs: list[int]) -> str:
    digest = hashlib.sha256(
        f"{subscription_id}/digest/{min(alert_seqs)}-{max(alert_seqs)}-{len(alert_seqs)}".encode()
    ).hexdigest()
    return f"msg_{digest[:32]}"


def backoff_seconds(
    attempts: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter, after `attempts` tries: uniform in the upper half
    of min(cap, base x 2^(attempts-1)), so retries of many subscriptions spread out and
    a failing endpoint is still given ever longer to recover (full jitter could retry
    a second after a failure however many came before)."""
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max((moment - now) / timedelta(seconds=1), 0.0)
