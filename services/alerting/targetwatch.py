"""The target watch: department alerts when a department's pace against the targets the
insurance office set crosses the hospital's thresholds.

Every `target_check_seconds` the worker looks at this month and this year (local days of
the hospitals' zone). For each department with a target for the period (a month without
its own falls back on a twelfth of its year's, as the progress endpoint shows it), it
sums the discharged, priced cases of the period so far and judges the two ceilings
(services/casecost/targets.py `watches`): total cost by its projection to the period's
end, cost per case by its value so far. Each measure keeps a level (blue, yellow, red by
the hospital's own thresholds, held a little on the way down); when the level changes, an
alert of kind `target` is inserted into the alerts table, and from there it reaches the
live stream and the webhooks like any other alert.

Several workers may run the watch at once: on PostgreSQL each pass holds the alert lock
(alert_inserts.py), so passes take turns and alerts keep their sequence order; the alert
id derives from the department, period, measure and the count of alerts the measure has
raised, so a pass repeated after a crash inserts nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.alerting.alert_inserts import hold_alert_lock, insert_alerts
from services.casecost import targets as pacing
from services.casecost.pricing import AlertLevel, PriceBook
from services.casecost.targets import Figures, Period, Watch, WatchRules
from services.storage.engine import upsert
from services.storage.models import CaseRecord, DepartmentTarget, TargetWatch

ALERT_IDS = uuid.UUID("5b0f6f0e-55a4-4f43-9d0b-7a3c2f7f1d21")


@dataclass(frozen=True, slots=True)
class Subject:
    """One department's target for one period."""

    hospital_id: str
    department: str
    period: Period
    target: Figures


def current_periods(today: date) -> list[Period]:
    """This month and this year."""
    return [pacing.parse_period(f"{today:%Y-%m}"), pacing.parse_period(f"{today:%Y}")]


def _figures(record: DepartmentTarget) -> Figures:
    return Figures(record.cases, record.cost_per_case, record.total_cost)


def subjects(records: Iterable[DepartmentTarget], periods: list[Period]) -> list[Subject]:
    """The targets to judge: each period's own, a month's from its year's where the month
    has none of its own."""
    by_key = {(r.hospital_id, r.department, r.period): r for r in records}
    found = []
    for hospital_id, department in sorted({(h, d) for h, d, _ in by_key}):
        for period in periods:
            own = by_key.get((hospital_id, department, period.text))
            if own is not None:
                found.append(Subject(hospital_id, department, period, _figures(own)))
            elif period.is_month and (yearly := by_key.get((hospital_id, department, period.year))):
                target = pacing.month_of_year(_figures(yearly))
                found.append(Subject(hospital_id, department, period, target))
    return found


def alert_id(subject: Subject, measure: str, number: int) -> str:
    name = f"{subject.hospital_id}|{subject.department}|{subject.period.text}|{measure}|{number}"
    return str(uuid.uuid5(ALERT_IDS, name))


def alert_values(
    subject: Subject,
    watch: Watch,
    previous: AlertLevel,
    level: AlertLevel,
    number: int,
    now: datetime,
) -> dict[str, object]:
    return {
        "alert_id": alert_id(subject, watch.measure, number),
        "hospital_id": subject.hospital_id,
        "case_id": "",
        "department": subject.department,
        "drg_code": None,
        "level": level,
        "previous_level": previous,
        "transition": pacing.transition(previous, level),
        "total_cost": watch.so_far,
        "standard_cost": watch.target,
        "ratio": watch.ratio,
        "event_id": "",
        "occurred_at": now,
        "raised_at": now,
        "top_contributors": [],
        "kind": "target",
        "projected_total": watch.projected,
        "projected_ratio": watch.ratio if watch.projected is not None else None,
        "target_period": subject.period.text,
        "target_measure": watch.measure,
    }


async def _so_far(
    db_session: AsyncSession,
    hospital_id: str,
    departments: list[str],
    period: Period,
    today: date,
    zone: tzinfo,
) -> dict[str, tuple[int, Decimal]]:
    """Discharged, priced cases per department in the period up to today: count, total."""
    last = min(period.last, today)
    conditions = (
        CaseRecord.hospital_id == hospital_id,
        CaseRecord.department.in_(departments),
        CaseRecord.status == "discharged",
        CaseRecord.drg_code.is_not(None),
        CaseRecord.standard_cost.is_not(None),
        CaseRecord.discharged_at >= pacing.day_start(period.first, zone),
        CaseRecord.discharged_at < pacing.day_start(last + timedelta(days=1), zone),
    )
    totals: dict[str, tuple[int, Decimal]] = {}
    if db_session.get_bind().dialect.name == "postgresql":
        # NUMERIC sums exactly there
        grouped = await db_session.execute(
            select(CaseRecord.department, func.count(), func.sum(CaseRecord.total_cost))
            .where(*conditions)
            .group_by(CaseRecord.department)
        )
        for department, count, total in grouped:
            totals[str(department)] = (int(count), Decimal(total))
        return totals
    # SQLite sums in floating point: the exact values are added up here
    for department, total in await db_session.execute(
        select(CaseRecord.department, CaseRecord.total_cost).where(*conditions)
    ):
        count, summed = totals.get(str(department), (0, Decimal(0)))
        totals[str(department)] = (count + 1, summed + total)
    return totals


async def sweep(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    price_book: PriceBook,
    zone: tzinfo,
    now: datetime,
    rules: WatchRules,
) -> int:
    """One pass over this month's and this year's targets; returns the alerts raised."""
    today = now.astimezone(zone).date()
    periods = current_periods(today)
    async with sessions() as db_session:
        records = (
            await db_session.scalars(
                select(DepartmentTarget).where(
                    DepartmentTarget.period.in_(sorted({p.text for p in periods}))
                )
            )
        ).all()
        judged = subjects(records, periods)
        if not judged:
            return 0
        await hold_alert_lock(db_session)
        held = {
            (w.hospital_id, w.department, w.period, w.measure): w
            for w in await db_session.scalars(
                select(TargetWatch).where(TargetWatch.period.in_(sorted({p.text for p in periods})))
            )
        }
        totals: dict[tuple[str, str], dict[str, tuple[int, Decimal]]] = {}
        for hospital_id, period in {(s.hospital_id, s.period) for s in judged}:
            departments = sorted({s.department for s in judged if s.hospital_id == hospital_id})
            totals[(hospital_id, period.text)] = await _so_far(
                db_session, hospital_id, departments, period, today, zone
            )
        alerts: list[dict[str, object]] = []
        watched: list[dict[str, object]] = []
        for subject in judged:
            count, total = totals[(subject.hospital_id, subject.period.text)].get(
                subject.department, (0, Decimal(0))
            )
            thresholds = price_book.thresholds_for(subject.hospital_id, None)
            for watch in pacing.watches(
                subject.period, today, subject.target, pacing.actual(count, total), rules
            ):
                key = (subject.hospital_id, subject.department, subject.period.text, watch.measure)
                state = held.get(key)
                previous: AlertLevel = "none" if state is None else state.level  # type: ignore[assignment]
                raised = 0 if state is None else state.alerts_raised
                level = pacing.watched_level(watch, thresholds, previous)
                if level != previous:
                    raised += 1
                    alerts.append(alert_values(subject, watch, previous, level, raised, now))
                if state is not None and (state.level, state.ratio) == (level, watch.ratio):
                    continue
                watched.append(
                    {
                        "hospital_id": subject.hospital_id,
                        "department": subject.department,
                        "period": subject.period.text,
                        "measure": watch.measure,
                        "level": level,
                        "ratio": watch.ratio,
                        "alerts_raised": raised,
                        "updated_at": now,
                    }
                )
        if alerts:
            await insert_alerts(db_session, alerts)
        if watched:
            await db_session.execute(
                upsert(
                    engine,
                    TargetWatch,
                    ["hospital_id", "department", "period", "measure"],
                    ["level", "ratio", "alerts_raised", "updated_at"],
                ),
                watched,
            )
        await db_session.commit()
    return len(alerts)
