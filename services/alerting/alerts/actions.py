"""Acting on alerts: acknowledge, resolve, review; an alert's actions; a case's timeline.

The decisions are in lifecycle.py; this loads the alert, checks the caller's scope,
records the action and answers. Nothing here commits: the route does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.alerting.alerts.lifecycle import (
    REASONABLE,
    UNREASONABLE,
    Acknowledge,
    AlertMark,
    Command,
    Overspend,
    Resolve,
    Review,
    acknowledged_level_of,
    as_status,
    next_status,
    status_after,
)
from services.alerting.alerts.schemas import (
    ActionOut,
    Actor,
    AlertDetail,
    AlertOut,
    CaseTimeline,
    TimelineEntry,
    TimelineKind,
)
from services.alerting.alerts.service import to_out
from services.alerting.exceptions import AlertNotFound, ConcurrentAction, UnknownCase
from services.metrics import ALERT_ACTIONS
from services.storage.models import AlertAction, AlertRecord, CaseRecord


def _overspend(reason: str | None) -> Overspend | None:
    if reason in REASONABLE:
        return "reasonable"
    if reason in UNREASONABLE:
        return "unreasonable"
    return None


def action_out(record: AlertAction) -> ActionOut:
    return ActionOut.model_validate(
        {
            "action": record.action,
            "reason": record.reason,
            "overspend": _overspend(record.reason),
            "decision": record.decision,
            "note": record.note,
            "from_status": record.from_status,
            "to_status": record.to_status,
            "actor": Actor(
                identity_id=record.actor_id, name=record.actor_name, role=record.actor_role
            ),
            "acted_at": record.acted_at,
        }
    )


async def _alert_in_scope(
    *, db_session: AsyncSession, alert_id: str, principal: Principal, lock: bool = False
) -> AlertRecord:
    query = select(AlertRecord).where(AlertRecord.alert_id == alert_id)
    if lock:
        # concurrent actions on one alert queue here (PostgreSQL); the step uniqueness
        # refuses the loser where row locks do not exist (SQLite)
        query = query.with_for_update()
    alert = await db_session.scalar(query)
    if alert is None or not principal.sees_department(alert.hospital_id, alert.department):
        raise AlertNotFound(f"no alert {alert_id}")
    return alert


async def _actions_of(*, db_session: AsyncSession, alert_id: str) -> Sequence[AlertAction]:
    query = select(AlertAction).where(AlertAction.alert_id == alert_id).order_by(AlertAction.step)
    return (await db_session.scalars(query)).all()


def _detail(alert: AlertRecord, actions: Sequence[AlertAction]) -> AlertDetail:
    return AlertDetail(
        **to_out(alert).model_dump(),
        status=status_after([as_status(action.to_status) for action in actions]),
        actions=[action_out(action) for action in actions],
    )


async def get(*, db_session: AsyncSession, alert_id: str, principal: Principal) -> AlertDetail:
    """One alert with its status and actions; 404 when absent or out of the caller's scope."""
    alert = await _alert_in_scope(db_session=db_session, alert_id=alert_id, principal=principal)
    return _detail(alert, await _actions_of(db_session=db_session, alert_id=alert_id))


async def act(
    *,
    db_session: AsyncSession,
    alert_id: str,
    principal: Principal,
    command: Command,
    note: str | None,
) -> AlertDetail:
    """Apply `command` to the alert as `principal` and record it; 409 when not allowed now."""
    alert = await _alert_in_scope(
        db_session=db_session, alert_id=alert_id, principal=principal, lock=True
    )
    actions = list(await _actions_of(db_session=db_session, alert_id=alert_id))
    current = status_after([as_status(action.to_status) for action in actions])
    new = next_status(current, command, alert_level=alert.level)
    kind = {Acknowledge: "acknowledge", Resolve: "resolve", Review: "review"}[type(command)]
    record = AlertAction(
        alert_id=alert.alert_id,
        step=len(actions) + 1,
        hospital_id=alert.hospital_id,
        case_id=alert.case_id,
        action=kind,
        reason=command.reason if isinstance(command, Resolve) else None,
        decision=command.decision if isinstance(command, Review) else None,
        note=note.strip() if note and note.strip() else None,
        from_status=current,
        to_status=new,
        actor_id=principal.identity_id,
        actor_name=principal.name,
        actor_role=principal.role,
        acted_at=datetime.now(UTC),
    )
    try:
        async with db_session.begin_nested():
            db_session.add(record)
    except IntegrityError:
        raise ConcurrentAction(
            f"the alert was {current} but someone acted on it at the same moment; reload it"
        ) from None
    ALERT_ACTIONS.labels(kind, new).inc()
    return _detail(alert, [*actions, record])


async def timeline(
    *, db_session: AsyncSession, hospital_id: str, case_id: str, principal: Principal
) -> CaseTimeline:
    """The case's alerts the caller may read and the actions on them, oldest first; 404
    when the case is out of scope.

    A case moves between departments; each alert keeps the department it was raised in,
    and shows here only to those who may read it (as `get` decides), with its actions and
    their notes: a department head sees the case's alerts of their own departments.
    """
    case = await db_session.get(CaseRecord, (hospital_id, case_id))
    if case is None or not principal.sees_department(hospital_id, case.department):
        raise UnknownCase(f"no case {case_id} in hospital {hospital_id}")
    alerts = (
        await db_session.scalars(
            select(AlertRecord)
            .where(
                AlertRecord.hospital_id == hospital_id,
                AlertRecord.case_id == case_id,
                principal.scope_clause(AlertRecord.hospital_id, AlertRecord.department),
            )
            .order_by(AlertRecord.seq)
        )
    ).all()
    level_of = {alert.alert_id: alert.level for alert in alerts}
    actions = (
        await db_session.scalars(
            select(AlertAction)
            .where(AlertAction.alert_id.in_(sorted(level_of)))
            .order_by(AlertAction.seq)
        )
    ).all()
    # sort key: the moment, then alerts before the actions taken at the same instant,
    # then the order written
    keyed: list[tuple[tuple[datetime, int, int], TimelineEntry]] = []
    for alert in alerts:
        out = to_out(alert)
        keyed.append(
            (
                (alert.raised_at, 0, alert.seq),
                TimelineEntry(
                    kind="alert",
                    at=alert.raised_at,
                    alert_id=alert.alert_id,
                    level=out.level,
                    summary=alert_summary(out),
                    alert=out,
                ),
            )
        )
    for action in actions:
        out_action = action_out(action)
        level = level_of[action.alert_id]
        keyed.append(
            (
                (action.acted_at, 1, action.seq),
                TimelineEntry.model_validate(
                    {
                        "kind": timeline_kind(out_action),
                        "at": action.acted_at,
                        "alert_id": action.alert_id,
                        "level": level,
                        "summary": action_summary(out_action, level),
                        "action": out_action,
                    }
                ),
            )
        )
    keyed.sort(key=lambda pair: pair[0])
    return CaseTimeline(
        hospital_id=hospital_id, case_id=case_id, entries=[entry for _, entry in keyed]
    )


def timeline_kind(action: ActionOut) -> TimelineKind:
    if action.action == "acknowledge":
        return "acknowledged"
    if action.action == "resolve":
        return "submitted_for_review" if action.to_status == "under_review" else "resolved"
    return "review_approved" if action.decision == "approved" else "review_rejected"


def alert_summary(alert: AlertOut) -> str:
    if alert.kind == "rule":
        # a monitoring rule's finding: the rule's name and what it found
        name = alert.rule_name.en if alert.rule_name else alert.rule_id
        return f"rule {name} ({alert.level}): {alert.text_en}"
    percent = f"{(Decimal(alert.ratio) * 100).quantize(Decimal('0.01'))}%"
    where = f"{alert.total_cost} of {alert.standard_cost} ({percent} of the DRG standard)"
    if alert.kind == "forecast" and alert.projected_total is not None:
        projected = f"{(Decimal(alert.projected_ratio or '0') * 100).quantize(Decimal('0.01'))}%"
        return (
            f"projected to reach {alert.level} at discharge: {alert.projected_total}"
            f" ({projected} of the DRG standard); cost so far {where}"
        )
    if alert.transition == "escalated":
        return f"escalated {alert.previous_level} -> {alert.level}: cost {where}"
    if alert.transition == "de-escalated":
        return f"de-escalated {alert.previous_level} -> {alert.level}: cost {where}"
    return f"back below every threshold (was {alert.previous_level}): cost {where}"


def action_summary(action: ActionOut, level: str) -> str:
    who = f"{action.actor.name} ({action.actor.role})"
    said = f": {action.note}" if action.note else ""
    kind = timeline_kind(action)
    if kind == "acknowledged":
        return f"{who} acknowledged the {level} alert{said}"
    if kind in ("resolved", "submitted_for_review"):
        overspend = f"{action.overspend} overspend, " if action.overspend else ""
        then = "; sent to the insurance office for review" if kind == "submitted_for_review" else ""
        return f"{who} resolved the {level} alert as {overspend}{action.reason}{then}{said}"
    if kind == "review_approved":
        return f"{who} approved the resolution of the {level} alert{said}"
    return f"{who} rejected the resolution of the {level} alert, back to the department{said}"


async def acknowledged_level(
    *, db_session: AsyncSession, hospital_id: str, case_id: str, before_seq: int | None = None
) -> str | None:
    """The highest level of the case someone acted on in its current episode, or None.

    For the notifier: an alert at a level above this is news; one at or below it is not
    (see `lifecycle.acknowledged_level_of` for the precise rule, and `lifecycle.is_news`).
    `before_seq` looks only at the alerts raised before that one (the episode as it
    stood when the alert being routed was raised).
    """
    acted = exists().where(AlertAction.alert_id == AlertRecord.alert_id)
    # a forecast alert is about where the case is heading: acting on it acknowledges no
    # level the case has reached
    query = select(AlertRecord.level, acted).where(
        AlertRecord.hospital_id == hospital_id,
        AlertRecord.case_id == case_id,
        AlertRecord.kind == "level",
    )
    if before_seq is not None:
        query = query.where(AlertRecord.seq < before_seq)
    rows = (await db_session.execute(query.order_by(AlertRecord.seq))).all()
    return acknowledged_level_of([AlertMark(level=level, acted=bool(did)) for level, did in rows])
