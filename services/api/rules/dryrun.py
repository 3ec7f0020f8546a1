"""A rule's dry run: what it would raise over the open cases, before anyone enables it.

A case rule is exact: each open case is rebuilt from its events in the ingest ledger,
replayed in ledger order (the order the worker applies them) through `apply_event` with
a price book whose case rules are this rule alone, so its findings are the ones the
worker would have raised had the rule been in force from the case's first event. At most
`limit` cases are replayed (the first by hospital and case id), and the answer says when
there were more. A department rule needs the department figures of the period, which
nothing here computes yet: its dry run is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.alerting.rulefigures import department_figures, drg_run_length, month_of
from services.casecost.apply import apply_event, new_case
from services.casecost.events import parse_event
from services.casecost.pricing import PriceBook
from services.casecost.rules import (
    CASE_RULE_TYPES,
    CaseRule,
    CaseRules,
    DepartmentRule,
    evaluate_department,
)
from services.storage.models import CaseRecord, LedgerEntry

# the cases whose ledger entries one query reads
CASES_PER_READ = 100


@dataclass(frozen=True, slots=True)
class DryRun:
    cases_checked: int
    truncated: bool
    findings: list[dict[str, Any]]
    # department rules: the month judged and the departments with figures in it
    period: str | None = None
    departments_checked: int = 0


async def dry_run(
    *,
    db_session: AsyncSession,
    caller: Principal,
    rule: CaseRule | DepartmentRule,
    price_book: PriceBook,
    hospital_id: str | None,
    limit: int,
    now: datetime,
) -> DryRun:
    """The findings `rule` would raise over the caller's open cases (see the module)."""
    if not isinstance(rule, CASE_RULE_TYPES):
        return await _department_dry_run(
            db_session=db_session,
            caller=caller,
            # evaluated whatever the rule says of itself: a dry run comes before it is enabled
            rule=rule.model_copy(update={"enabled": True}),
            zone=price_book.zone,
            hospital_id=hospital_id,
            now=now,
        )
    trial = rule.model_copy(update={"enabled": True})
    book = replace(price_book, case_rules=CaseRules([trial], price_book.zone))
    query = (
        select(CaseRecord.hospital_id, CaseRecord.case_id)
        .where(CaseRecord.status == "open")
        .where(caller.scope_clause(CaseRecord.hospital_id, CaseRecord.department))
        .order_by(CaseRecord.hospital_id, CaseRecord.case_id)
        .limit(limit + 1)
    )
    if hospital_id is not None:
        query = query.where(CaseRecord.hospital_id == hospital_id)
    cases = list((await db_session.execute(query)).tuples())
    truncated = len(cases) > limit
    cases = cases[:limit]
    findings: list[dict[str, Any]] = []
    for start in range(0, len(cases), CASES_PER_READ):
        chunk = cases[start : start + CASES_PER_READ]
        events = await _ledger(db_session, chunk)
        for case_hospital, case_id in chunk:
            findings.extend(
                _replay(case_hospital, case_id, events.get((case_hospital, case_id), []), book, now)
            )
    return DryRun(cases_checked=len(cases), truncated=truncated, findings=findings)


async def _department_dry_run(
    *,
    db_session: AsyncSession,
    caller: Principal,
    rule: DepartmentRule,
    zone: tzinfo,
    hospital_id: str | None,
    now: datetime,
) -> DryRun:
    """The findings of a department rule over the current month's figures of the
    departments of the caller's hospitals (a department head's: their departments)."""
    hospitals: set[str] | None = None if caller.all_hospitals else set(caller.hospitals)
    if hospital_id is not None:
        hospitals = {hospital_id} & hospitals if hospitals is not None else {hospital_id}
    month = month_of(now.astimezone(zone).date())
    figures = await department_figures(
        db_session=db_session,
        hospital_ids=hospitals,
        months=[month],
        now=now,
        zone=zone,
        drg_months=drg_run_length([rule]),
    )
    figures = [
        figure
        for figure in figures
        if caller.sees_department(figure.period.hospital_id, figure.period.department)
    ]
    findings = [
        finding
        for figure in figures
        for finding in evaluate_department([rule], figure.period, figure.drg_months, now)
    ]
    return DryRun(
        cases_checked=0,
        truncated=False,
        findings=findings,
        period=month,
        departments_checked=len(figures),
    )


async def _ledger(
    db_session: AsyncSession, cases: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[str]]:
    """The ledger entries (payloads) of some cases, each case's in ledger order: its
    per-case sequence, then (for entries without one) arrival."""
    rows = await db_session.execute(
        select(LedgerEntry.hospital_id, LedgerEntry.case_id, LedgerEntry.payload)
        .where(tuple_(LedgerEntry.hospital_id, LedgerEntry.case_id).in_(cases))
        .order_by(LedgerEntry.case_seq.is_(None), LedgerEntry.case_seq, LedgerEntry.seq)
    )
    found: dict[tuple[str, str], list[str]] = {}
    for hospital_id, case_id, payload in rows.tuples():
        found.setdefault((hospital_id, case_id), []).append(payload)
    return found


def _replay(
    hospital_id: str, case_id: str, payloads: Sequence[str], book: PriceBook, now: datetime
) -> list[dict[str, Any]]:
    """The rule findings of one case replayed from its ledger entries."""
    state = new_case(hospital_id, case_id)
    findings: list[dict[str, Any]] = []
    for payload in payloads:
        try:
            event = parse_event(orjson.loads(payload))
        except (orjson.JSONDecodeError, ValidationError):
            continue  # the worker keeps such an event as a dead letter and applies nothing
        outcome = apply_event(state, event, book, now)
        findings.extend(alert for alert in outcome.alerts if alert.get("kind") == "rule")
    return findings
