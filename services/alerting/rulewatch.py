"""The rule watch: the department monitoring rules, judged on a schedule and when a month
closes.

Every `rule_check_seconds` the worker judges two calendar months of local days (the
hospitals' zone): the current month so far and the month that just closed. For each
hospital and department with discharged, priced cases in a month it computes the month's
figures (`DepartmentPeriod`: cases, cost per case, low-ratio cases, and the cost per case
of the same month last year and of the previous month) and, per DRG, its months up to
that one (`DrgMonth`), then runs the enabled department rules over them
(services/casecost/rules.py `evaluate_department`). A finding is inserted into the alerts
table as an alert of kind `rule` with no case (case_id "", the department set), and from
there reaches the live stream, the webhooks and the briefings like any other alert.

When a month is judged:
- the current month on every check; a rule with `min_cases` judges it once the month
  has that many discharged cases, so a department's growth or low-ratio share is raised
  while the month is still running;
- the month that just closed from the first check after local midnight of the 1st, and on
  every check of the month after it (the figures come from the same query, and a finding
  keeps its id), so that a worker down at midnight, or a discharge recorded late, still
  counts.
A finding's id is a uuid5 over the rule id and version, the department and the period
(services/casecost/rules.py `finding_id`): the two months differ, so both can raise; a
month already raised while it ran is not raised again when it closes; a new version of a
rule judges afresh.

Several workers may run the watch at once, and restarts repeat it: the ids already in the
table are skipped, and the rest are inserted with insert-ignore under the alert lock (on
PostgreSQL; alert_inserts.py), so each finding is inserted once and alerts keep their
sequence order.

The figures of all departments come from one grouped query per check, over the cases
discharged in the months the rules look at (at most 25): its rows are bounded by
departments x DRGs x months (rulefigures.py `department_figures`, the same computation
for any months: a rule's dry run calls it too). A rule switched off for a hospital or a
department (the rule registry's switches) is skipped there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.alerting.alert_inserts import hold_alert_lock, insert_alerts
from services.alerting.projector import alert_row
from services.alerting.rulefigures import (
    department_figures,
    drg_run_length,
    month_of,
    shift_month,
)
from services.casecost.rules import (
    NO_SWITCHES,
    DepartmentRule,
    RuleSwitches,
    evaluate_department,
)
from services.storage.models import AlertRecord


async def sweep(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    rules: Sequence[DepartmentRule],
    zone: tzinfo,
    now: datetime,
    switches: RuleSwitches = NO_SWITCHES,
) -> int:
    """One check of the current month and the month just closed; returns the alerts raised."""
    enabled = [rule for rule in rules if rule.enabled]
    if not enabled:
        return 0
    current = month_of(now.astimezone(zone).date())
    async with sessions() as db_session:
        figures = await department_figures(
            db_session=db_session,
            hospital_ids=None,
            months=[shift_month(current, -1), current],
            now=now,
            zone=zone,
            drg_months=drg_run_length(enabled),
        )
        findings = {
            finding["alert_id"]: finding
            for figure in figures
            for finding in evaluate_department(
                enabled, figure.period, figure.drg_months, now, switches
            )
        }
        if not findings:
            return 0
        # most checks find what earlier ones raised: those need neither the lock nor a write
        rows = [alert_row(findings[key]) for key in sorted(findings)]
        raised = await _raised(db_session, rows)
        new = [row for row in rows if row["alert_id"] not in raised]
        if not new:
            return 0
        locked = await hold_alert_lock(db_session)
        if locked:
            # under the lock, what another worker inserted meanwhile is committed
            raised = await _raised(db_session, new)
            new = [row for row in new if row["alert_id"] not in raised]
        if not new:
            return 0
        inserted = await insert_alerts(db_session, new)
        await db_session.commit()
    # SQLite has no advisory lock, but one writer at a time: its count of rows inserted
    # leaves out what another check inserted first
    return len(new) if locked else inserted


async def _raised(db_session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """The ids of `rows` already in the alerts table."""
    ids = sorted(row["alert_id"] for row in rows)
    found: set[str] = set()
    # in slices: a database bounds the parameters of one statement
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(
            await db_session.scalars(
                select(AlertRecord.alert_id).where(AlertRecord.alert_id.in_(chunk))
            )
        )
    return found
