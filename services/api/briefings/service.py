"""The weekly department briefing: a week's indicators, its red cases and their causes,
its alerts and how they were answered.

Weeks are ISO weeks of local days (Monday to Sunday in the hospitals' zone). A case or
alert belongs to the week of the event that made it cross, as the daily alert counts
count them; the indicators are those of the cases discharged in the week.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.alerting.alerts.lifecycle import Status
from services.alerting.alerts.schemas import Contributor
from services.api.briefings.schemas import AlertTally, BriefingAlert, RedCase, WeeklyBriefing
from services.api.indicators import service as indicator_service
from services.casecost.pricing import PriceBook, money
from services.casecost.targets import day_start
from services.storage.models import AlertAction, AlertRecord, CaseRecord, DepartmentRecord

WEEK_PATTERN = r"^\d{4}-W\d{2}$"
WEEK_RULE = "an ISO week such as 2026-W48"
ESCALATION_LEVELS = ("blue", "yellow", "red")


def week_days(week: str) -> tuple[date, date]:
    """The Monday and the Sunday of an ISO week `YYYY-Www`; ValueError if there is none."""
    found = re.fullmatch(r"(\d{4})-W(\d{2})", week)
    if found is None:
        raise ValueError(f"expected {WEEK_RULE}")
    year, number = int(found[1]), int(found[2])
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"{year} has no week {number}") from None
    return monday, monday + timedelta(days=6)


def week_of(day: date) -> str:
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02d}"


def last_complete_week(today: date) -> str:
    """The week a briefing is about by default: the last one that has ended."""
    return week_of(today - timedelta(days=7))


async def weekly(
    *,
    db_session: AsyncSession,
    caller: Principal,
    price_book: PriceBook,
    zone: tzinfo,
    zone_name: str,
    now: datetime,
    hospital_id: str,
    department: str | None,
    week: str,
) -> WeeklyBriefing:
    """The briefing of `department` (every department in scope when None) for `week`."""
    first, last = week_days(week)
    report = await indicator_service.report(
        db_session=db_session,
        caller=caller,
        price_book=price_book,
        zone=zone,
        hospital_id=hospital_id,
        first=first,
        last=last,
        department=department,
        drg_code=None,
        group_by="drg",
    )
    records = await _alerts_of_week(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        department=department,
        start=day_start(first, zone),
        end=day_start(last + timedelta(days=1), zone),
    )
    actions = await _actions_of(db_session=db_session, alert_ids=[r.alert_id for r in records])
    alerts = [_alert_out(record, actions.get(record.alert_id, ())) for record in records]
    names = await _department_names(
        db_session=db_session, hospital_id=hospital_id, department=department
    )
    return WeeklyBriefing(
        hospital_id=hospital_id,
        department=department,
        department_name_zh=names[0],
        department_name_en=names[1],
        week=week,
        from_=first,
        to=last,
        timezone=zone_name,
        generated_at=now,
        indicators=report.overall,
        drgs=report.groups,
        red_cases=await _red_cases(
            db_session=db_session, hospital_id=hospital_id, records=records, alerts=alerts
        ),
        alerts=alerts,
        alert_tally=_tally(alerts),
    )


async def _alerts_of_week(
    *,
    db_session: AsyncSession,
    caller: Principal,
    hospital_id: str,
    department: str | None,
    start: datetime,
    end: datetime,
) -> Sequence[AlertRecord]:
    conditions: list[ColumnElement[bool]] = [
        AlertRecord.hospital_id == hospital_id,
        AlertRecord.occurred_at >= start,
        AlertRecord.occurred_at < end,
        caller.scope_clause(AlertRecord.hospital_id, AlertRecord.department),
    ]
    if department:
        conditions.append(AlertRecord.department == department)
    query = (
        select(AlertRecord).where(*conditions).order_by(AlertRecord.occurred_at, AlertRecord.seq)
    )
    return (await db_session.scalars(query)).all()


async def _actions_of(
    *, db_session: AsyncSession, alert_ids: list[str]
) -> dict[str, list[AlertAction]]:
    """Each alert's actions, in the order they were taken."""
    found: dict[str, list[AlertAction]] = {}
    # in slices: a database bounds the parameters of one statement
    for start in range(0, len(alert_ids), 500):
        query = (
            select(AlertAction)
            .where(AlertAction.alert_id.in_(alert_ids[start : start + 500]))
            .order_by(AlertAction.alert_id, AlertAction.step)
        )
        for action in await db_session.scalars(query):
            found.setdefault(action.alert_id, []).append(action)
    return found


def _alert_out(record: AlertRecord, actions: Sequence[AlertAction]) -> BriefingAlert:
    latest = actions[-1] if actions else None
    resolving = next((a for a in reversed(actions) if a.action == "resolve"), None)
    reviewed = next((a for a in reversed(actions) if a.action == "review"), None)
    status: Status = "open" if latest is None else _status(latest.to_status)
    return BriefingAlert(
        alert_id=record.alert_id,
        kind=record.kind,
        case_id=record.case_id,
        target_period=record.target_period,
        target_measure=record.target_measure,
        rule_id=record.rule_id,
        rule_version=record.rule_version,
        # the rule's name as it was when it found this (kept in the finding's detail)
        rule_name=(record.detail or {}).get("rule_name") if record.kind == "rule" else None,
        rule_period=record.rule_period,
        text_zh=record.text_zh,
        text_en=record.text_en,
        department=record.department,
        drg_code=record.drg_code,
        level=record.level,
        previous_level=record.previous_level,
        transition=record.transition,
        ratio=str(record.ratio),
        raised_at=record.occurred_at,
        status=status,
        last_action=None if latest is None else latest.action,
        acted_by=None if latest is None else latest.actor_name,
        acted_at=None if latest is None else latest.acted_at,
        reason=None if resolving is None else resolving.reason,
        decision=None if reviewed is None else reviewed.decision,
        note=None if latest is None else latest.note,
    )


def _status(text: str) -> Status:
    for status in ("open", "acknowledged", "under_review", "returned", "resolved"):
        if text == status:
            return status
    raise ValueError(f"unknown alert status {text!r}")


async def _red_cases(
    *,
    db_session: AsyncSession,
    hospital_id: str,
    records: Sequence[AlertRecord],
    alerts: list[BriefingAlert],
) -> list[RedCase]:
    """Each case's first crossing into red in the week, with the case as it is now."""
    crossings: dict[str, tuple[AlertRecord, BriefingAlert]] = {}
    for record, alert in zip(records, alerts, strict=True):
        if record.kind == "level" and record.level == "red" and record.transition == "escalated":
            crossings.setdefault(record.case_id, (record, alert))
    cases = await _cases(db_session=db_session, hospital_id=hospital_id, ids=list(crossings))
    red: list[RedCase] = []
    for case_id, (record, alert) in crossings.items():
        case = cases.get(case_id)
        red.append(
            RedCase(
                case_id=case_id,
                department=record.department,
                drg_code=record.drg_code,
                drg_name=None if case is None else case.drg_name,
                reached_red_at=record.occurred_at,
                total_cost_at_red=money(record.total_cost) or "0.00",
                standard_cost=money(record.standard_cost) or "0.00",
                ratio_at_red=str(record.ratio),
                causes=[Contributor(**item) for item in record.top_contributors],
                status=None if case is None else case.status,
                total_cost=None if case is None else money(case.total_cost),
                ratio=None if case is None or case.ratio is None else str(case.ratio),
                level=None if case is None else case.level,
                alert_status=alert.status,
                resolution_reason=alert.reason,
                resolution_note=alert.note,
            )
        )
    # the costliest overrun first: what the department meeting should look at
    red.sort(key=lambda case: (-_ratio(case.ratio or case.ratio_at_red), case.case_id))
    return red


def _ratio(text: str) -> Decimal:
    return Decimal(text)


async def _cases(
    *, db_session: AsyncSession, hospital_id: str, ids: list[str]
) -> dict[str, CaseRecord]:
    found: dict[str, CaseRecord] = {}
    for start in range(0, len(ids), 500):
        query = select(CaseRecord).where(
            CaseRecord.hospital_id == hospital_id, CaseRecord.case_id.in_(ids[start : start + 500])
        )
        for case in await db_session.scalars(query):
            found[case.case_id] = case
    return found


def _tally(alerts: list[BriefingAlert]) -> AlertTally:
    raised: Counter[str] = Counter({level: 0 for level in ESCALATION_LEVELS})
    raised.update(a.level for a in alerts if a.transition == "escalated")
    by_status: Counter[str] = Counter(a.status for a in alerts)
    resolutions: Counter[str] = Counter(
        a.reason
        for a in alerts
        if a.reason is not None and a.status in ("resolved", "under_review")
    )
    return AlertTally(
        raised=dict(raised),
        by_status=dict(sorted(by_status.items())),
        resolutions=dict(sorted(resolutions.items())),
    )


async def _department_names(
    *, db_session: AsyncSession, hospital_id: str, department: str | None
) -> tuple[str | None, str | None]:
    if not department:
        return None, None
    record = await db_session.get(DepartmentRecord, (hospital_id, department))
    return (None, None) if record is None else (record.name_zh, record.name_en)


def as_dict(briefing: WeeklyBriefing) -> dict[str, Any]:
    """The briefing as JSON-ready data, with the wire's field names."""
    return briefing.model_dump(mode="json", by_alias=True)
