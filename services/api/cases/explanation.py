"""The explanation of a case's cost, as the case and the alert detail serve it.

The explanation itself is the pure core's (services/casecost/explain.py); this reads
what it needs: the case row, and the typical category mix of its DRG in its hospital.

The typical mix is the cost by category summed over the hospital's discharged cases of
the DRG whose local discharge day falls in the last `TYPICAL_WINDOW_DAYS` days, over the
sum of their total cost (as the indicators' category shares are), once there are at
least `TYPICAL_MIN_CASES` of them; with fewer there is none. It is a hospital figure:
every department's cases count (a share mix tells nothing of any one case), and the
case explained counts among them once discharged. One read per hospital and DRG, kept
for `TYPICAL_CACHE_SECONDS`: a case page asked for again and again reads it once.

The case's rule findings are its rule alerts the caller may read (a case moves between
departments; each alert keeps the department it was raised in, as the timeline shows
them): the newest `RULE_FINDINGS_SHOWN`, the most severe, and how many in all, three
small reads on the alerts of one case.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal

import orjson
from sqlalchemy import ColumnElement, Text, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.principal import Principal
from services.alerting.alerts.schemas import RuleName
from services.api.cases.schemas import (
    Acceleration,
    CategoryExplained,
    DoctorExplained,
    Driver,
    Explanation,
    ItemExplained,
    RuleFindingExplained,
)
from services.casecost import explain as core
from services.casecost.pricing import CENT, LEVEL_RANK, RATIO_PLACES
from services.casecost.targets import day_start
from services.storage.models import AlertRecord, CaseRecord

TYPICAL_MIN_CASES = 10
TYPICAL_WINDOW_DAYS = 365
TYPICAL_CACHE_SECONDS = 300.0
TYPICAL_CACHE_LIMIT = 4096
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class _Kept:
    expires: float
    mix: core.TypicalMix | None


class TypicalMixes:
    """Typical mixes by (hospital, DRG, first day of the window), each kept for `seconds`
    of `clock` (monotonic seconds)."""

    def __init__(
        self,
        seconds: float = TYPICAL_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._kept: dict[tuple[str, str, date], _Kept] = {}

    def get(self, key: tuple[str, str, date]) -> tuple[bool, core.TypicalMix | None]:
        """(whether it is kept and fresh, the mix)."""
        kept = self._kept.get(key)
        if kept is None or kept.expires <= self._clock():
            return False, None
        return True, kept.mix

    def put(self, key: tuple[str, str, date], mix: core.TypicalMix | None) -> None:
        now = self._clock()
        if len(self._kept) >= TYPICAL_CACHE_LIMIT:
            self._kept = {k: v for k, v in self._kept.items() if v.expires > now}
            if len(self._kept) >= TYPICAL_CACHE_LIMIT:
                self._kept.clear()
        self._kept[key] = _Kept(now + self._seconds, mix)


async def typical_mix(
    *,
    db_session: AsyncSession,
    mixes: TypicalMixes,
    hospital_id: str,
    drg_code: str,
    today: date,
    zone: tzinfo,
) -> core.TypicalMix | None:
    """The DRG's typical category mix in the hospital (None with too few cases)."""
    first = today - timedelta(days=TYPICAL_WINDOW_DAYS - 1)
    key = (hospital_id, drg_code, first)
    known, mix = mixes.get(key)
    if known:
        return mix
    query = select(
        CaseRecord.total_cost,
        # the JSON as text, decoded by orjson, as the indicators read it
        cast(CaseRecord.cost_by_category, Text).label("cost_by_category"),
    ).where(
        CaseRecord.hospital_id == hospital_id,
        CaseRecord.drg_code == drg_code,
        CaseRecord.status == "discharged",
        CaseRecord.discharged_at >= day_start(first, zone),
    )
    cases = 0
    total = ZERO
    by_category: dict[str, Decimal] = {}
    for row in await db_session.execute(query):
        cases += 1
        total += row.total_cost
        for category, amount in orjson.loads(row.cost_by_category).items():
            by_category[category] = by_category.get(category, ZERO) + Decimal(amount)
    mix = None
    if cases >= TYPICAL_MIN_CASES and total > 0:
        mix = core.TypicalMix(
            shares={
                category: (amount / total).quantize(RATIO_PLACES, ROUND_HALF_UP)
                for category, amount in sorted(by_category.items())
            },
            cases=cases,
        )
    mixes.put(key, mix)
    return mix


def case_figures(record: CaseRecord, los_days: int | None, zone: tzinfo) -> core.CaseFigures:
    """The case row as the core explains it; its days are the hospital's local days, as
    the case's `daily_costs` count them."""
    return core.CaseFigures(
        drg_code=record.drg_code,
        total_cost=record.total_cost,
        cost_by_category={k: Decimal(v) for k, v in record.cost_by_category.items()},
        cost_by_day={
            date.fromisoformat(day): Decimal(amount)
            for day, amount in (record.cost_by_day or {}).items()
        },
        admitted_day=None
        if record.admitted_at is None
        else record.admitted_at.astimezone(zone).date(),
        items=[
            core.ItemLine(
                item["item_code"],
                item["item_name"],
                item["category"],
                Decimal(item["quantity"]),
                Decimal(item["amount"]),
            )
            for item in record.top_contributors
        ],
        cost_by_orderer={k: Decimal(v) for k, v in (record.cost_by_orderer or {}).items()},
        los_days=los_days,
        avg_los_days=record.avg_los_days,
    )


def _finding(record: AlertRecord) -> core.RuleFinding:
    name = (record.detail or {}).get("rule_name") or {}
    return core.RuleFinding(
        alert_id=record.alert_id,
        rule_id=record.rule_id or "",
        rule_version=record.rule_version or 0,
        rule_name_zh=str(name.get("zh") or record.rule_id or ""),
        rule_name_en=str(name.get("en") or record.rule_id or ""),
        severity=record.level,
        text_zh=record.text_zh or "",
        text_en=record.text_en or "",
        raised_at=record.raised_at,
        occurred_at=record.occurred_at,
    )


async def rule_findings(
    *, db_session: AsyncSession, record: CaseRecord, caller: Principal
) -> tuple[list[core.RuleFinding], int]:
    """The case's newest rule alerts the caller may read and its most severe one (the
    explanation states it), with how many there are in all."""
    of_case = (
        AlertRecord.hospital_id == record.hospital_id,
        AlertRecord.case_id == record.case_id,
        AlertRecord.kind == "rule",
        caller.scope_clause(AlertRecord.hospital_id, AlertRecord.department),
    )
    total = int(await db_session.scalar(select(func.count()).where(*of_case)) or 0)
    if total == 0:
        return [], 0
    newest = (
        await db_session.scalars(
            select(AlertRecord)
            .where(*of_case)
            .order_by(AlertRecord.seq.desc())
            .limit(core.RULE_FINDINGS_SHOWN)
        )
    ).all()
    found = {alert.alert_id: alert for alert in newest}
    if total > len(newest):
        severest = await db_session.scalar(
            select(AlertRecord)
            .where(*of_case)
            .order_by(_severity_rank().desc(), AlertRecord.seq.desc())
            .limit(1)
        )
        if severest is not None:
            found[severest.alert_id] = severest
    return [_finding(alert) for alert in found.values()], total


def _severity_rank() -> ColumnElement[int]:
    return case(
        *((AlertRecord.level == level, rank) for level, rank in LEVEL_RANK.items()), else_=0
    )


def rule_finding_out(finding: core.RuleFinding) -> RuleFindingExplained:
    return RuleFindingExplained.model_validate(
        {
            "alert_id": finding.alert_id,
            "rule_id": finding.rule_id,
            "rule_version": finding.rule_version,
            "rule_name": RuleName(zh=finding.rule_name_zh, en=finding.rule_name_en),
            "severity": finding.severity,
            "level": finding.severity,
            "text_zh": finding.text_zh,
            "text_en": finding.text_en,
            "raised_at": finding.raised_at,
            "occurred_at": finding.occurred_at,
        }
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def explanation_out(explanation: core.Explanation) -> Explanation:
    typical, accelerated, driver = explanation.typical, explanation.accelerated, explanation.driver
    return Explanation(
        typical_source=None if typical is None else typical.source,
        typical_cases=None if typical is None else typical.cases,
        categories=[
            CategoryExplained(
                category=row.category,
                amount=str(row.amount),
                share=_text(row.share),
                typical_share=_text(row.typical_share),
                difference=_text(row.difference),
                excess=_text(row.excess),
            )
            for row in explanation.categories
        ],
        top_items=[
            ItemExplained(
                item_code=entry.item.item_code,
                item_name=entry.item.item_name,
                category=entry.item.category,
                quantity=str(entry.item.quantity),
                amount=str(entry.item.amount.quantize(CENT, ROUND_HALF_UP)),
                share=_text(entry.share),
            )
            for entry in explanation.top_items
        ],
        top_doctors=[
            DoctorExplained(
                ordered_by=entry.ordered_by, amount=str(entry.amount), share=_text(entry.share)
            )
            for entry in explanation.top_orderers
        ],
        accelerated=None
        if accelerated is None
        else Acceleration(
            day=accelerated.day, amount=str(accelerated.amount), baseline=str(accelerated.baseline)
        ),
        driver=None
        if driver is None
        else Driver(
            kind=driver.kind,
            category=driver.category,
            item_code=None if driver.item is None else driver.item.item_code,
            day=driver.day,
        ),
        rule_findings=[rule_finding_out(found) for found in explanation.rule_findings],
        rule_findings_total=explanation.rule_findings_total,
        summary_zh=explanation.summary_zh,
        summary_en=explanation.summary_en,
    )


async def explain_record(
    *,
    db_session: AsyncSession,
    mixes: TypicalMixes,
    record: CaseRecord,
    caller: Principal,
    los_days: int | None,
    today: date,
    zone: tzinfo,
) -> Explanation:
    """The case's explanation (`los_days`: its stay so far), against its DRG's typical mix
    in the window ending on the local day `today`, where there is one, with the case's
    rule alerts that `caller` may read."""
    mix = None
    if record.drg_code is not None:
        mix = await typical_mix(
            db_session=db_session,
            mixes=mixes,
            hospital_id=record.hospital_id,
            drg_code=record.drg_code,
            today=today,
            zone=zone,
        )
    findings, total = await rule_findings(db_session=db_session, record=record, caller=caller)
    return explanation_out(core.explain(case_figures(record, los_days, zone), mix, findings, total))
