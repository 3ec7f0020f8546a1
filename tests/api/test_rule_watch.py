"""Department monitoring rules: the figures of departments' months from the cases table,
the worker's rule watch over them (the shipped rules), and the alerts it raises read back
through the API, on PostgreSQL and SQLite.

The check runs on 10 December 2026 (local time): it judges December so far and November,
which has just closed. The cases, discharged in Shanghai local time (+08:00):

- GROW: cost per case 12,000.00 in November 2026, 10,000.00 in November 2025 (+20%) and
  11,000.00 in October: judged on the same month last year;
- PREV: 11,600.00 in November, 10,000.00 in October and no history of last year (+16%):
  judged on the previous month;
- STEADY: +15% exactly on last year, one low-ratio case of five (20% exactly), a DRG over
  its standard in October and November only, a case discharged at 00:10 on 1 December
  (30 November in UTC) that counts in December: nothing;
- LOW: two low-ratio cases of five in November (40%); FEW: three of four, under the
  rules' five cases;
- RUN: DRG AA11 over its standard in September, October, November and December so far
  (found for November and December); GAP: over in August, September and November, under
  in October: nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert

from services.alerting.rulefigures import (
    DepartmentFigures,
    department_figures,
    drg_run_length,
    shift_month,
)
from services.alerting.rulewatch import sweep
from services.casecost.rules import (
    DepartmentPeriod,
    DepartmentRule,
    DrgMonth,
    DrgOverStandardMonthsRule,
    RuleSwitches,
)
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files
from services.settings import CommonSettings
from services.storage.models import CaseRecord
from tests.api import test_indicators as indicator_tests
from tests.api.conftest import Api

database_url = indicator_tests.database_url
service = indicator_tests.service
key_for = indicator_tests.key_for

ZONE = CommonSettings().zone
NOW = datetime.fromisoformat("2026-12-10T12:00:00+08:00")
# the shipped department rules judging the few cases of these constructed months: a
# DRG's months counted from its first case, a department's period from five cases (the
# shipped rules want 10 and 30)
RULES: tuple[DepartmentRule, ...] = tuple(
    rule.model_copy(
        update={
            "params": rule.params.model_copy(
                update={"min_cases": 1 if isinstance(rule, DrgOverStandardMonthsRule) else 5}
            )
        }
    )
    for rule in load_rule_files(DEFAULT_RULES_DIR).department_rules
)
EPOCH = date(1970, 1, 1)
serial = iter(range(1_000_000))


def discharged(
    department: str,
    at: str,
    cost: str,
    *,
    standard: str = "20000.00",
    drg: str | None = "AA11",
    status: str = "discharged",
    hospital: str = "H001",
) -> dict[str, Any]:
    """A cases row as the projector writes it: discharged at `at` (local +08:00 time)."""
    moment = datetime.fromisoformat(f"{at}+08:00")
    total, standard_cost = Decimal(cost), None if drg is None else Decimal(standard)
    flag = None
    if standard_cost is not None:
        if total < standard_cost * Decimal("0.4"):
            flag = "low"
        elif total > standard_cost * 2:
            flag = "high"
    return {
        "hospital_id": hospital,
        "case_id": f"{department}-{next(serial)}",
        "status": status,
        "department": department,
        "drg_code": drg,
        "insurance_scheme": "employee",
        "standard_cost": standard_cost,
        "total_cost": total,
        "ratio": None
        if standard_cost is None
        else (total / standard_cost).quantize(Decimal("0.0001")),
        "level": "none" if standard_cost is not None else "unpriced",
        "ratio_flag": flag,
        "cost_by_category": {"drug": cost},
        "top_contributors": [],
        "admitted_at": moment,
        "discharged_at": moment if status == "discharged" else None,
        "utc_offset_minutes": 480,
        "events_applied": 3,
        "updated_at": moment,
        "discharged_day": (moment.date() - EPOCH).days if status == "discharged" else None,
    }


def month_of(department: str, month: str, costs: list[str], **kwargs: Any) -> list[dict[str, Any]]:
    return [
        discharged(department, f"{month}-{10 + n:02d}T09:00:00", c, **kwargs)
        for n, c in enumerate(costs)
    ]


def cases_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rows += month_of("GROW", "2026-11", ["12000.00"] * 5)
    rows += month_of("GROW", "2025-11", ["10000.00"] * 5)
    rows += month_of("GROW", "2026-10", ["11000.00"] * 5)
    rows += month_of("PREV", "2026-11", ["11600.00"] * 5)
    rows += month_of("PREV", "2026-10", ["10000.00"] * 5)
    # +15% exactly: not more than max_growth
    # 11,500.00 per case, one of five low-ratio (under 4,400.00)
    rows += month_of("STEADY", "2026-11", ["13375.00"] * 4 + ["4000.00"], standard="11000.00")
    rows += month_of("STEADY", "2025-11", ["10000.00"] * 5)
    rows += month_of("STEADY", "2026-10", ["12000.00"], standard="11000.00")
    rows += month_of("STEADY", "2026-09", ["9000.00"], standard="11000.00")
    rows.append(discharged("STEADY", "2026-12-01T00:10:00", "3000.00"))  # December's
    # neither open nor unpriced cases count
    rows.append(discharged("STEADY", "2026-11-20T09:00:00", "1000.00", status="open"))
    rows.append(discharged("STEADY", "2026-11-20T09:00:00", "1000.00", drg=None))
    rows += month_of("LOW", "2026-11", ["5000.00", "7000.00", "12000.00", "12000.00", "12000.00"])
    rows += month_of("FEW", "2026-11", ["5000.00", "5000.00", "5000.00", "12000.00"])
    for month in ("2026-09", "2026-10", "2026-11", "2026-12"):
        rows += month_of("RUN", month, ["21000.00", "20000.00"])  # 41,000 against 40,000
    for month, cost in (
        ("2026-08", "25000.00"),
        ("2026-09", "25000.00"),
        ("2026-10", "19000.00"),
        ("2026-11", "25000.00"),
    ):
        rows += month_of("GAP", month, [cost])
    # another hospital's department of the same code: judged on its own figures
    rows += month_of("GROW", "2026-11", ["30000.00"] * 5, hospital="H002")
    rows += month_of("GROW", "2026-10", ["20000.00"] * 5, hospital="H002")
    return rows


@pytest.fixture
async def cases(service: Api) -> Api:
    async with service.sessions() as db_session:
        await db_session.execute(insert(CaseRecord), cases_rows())
        await db_session.commit()
    return service


async def figures_of(
    api: Api, months: list[str], hospital_ids: list[str] | None = None, now: datetime = NOW
) -> dict[tuple[str, str, str], DepartmentFigures]:
    async with api.sessions() as db_session:
        found = await department_figures(
            db_session=db_session, hospital_ids=hospital_ids, months=months, now=now, zone=ZONE
        )
    return {(f.period.hospital_id, f.period.department, f.period.period): f for f in found}


async def test_a_months_figures_with_last_year_and_the_previous_month(cases: Api) -> None:
    found = await figures_of(cases, ["2026-11", "2026-12"], ["H001"])

    assert found[("H001", "GROW", "2026-11")].period == DepartmentPeriod(
        hospital_id="H001",
        department="GROW",
        period="2026-11",
        cases=5,
        cost_per_case=Decimal("12000.00"),
        low_ratio_cases=0,
        last_year_cost_per_case=Decimal("10000.00"),
        previous_cost_per_case=Decimal("11000.00"),
    )
    prev = found[("H001", "PREV", "2026-11")].period
    assert (prev.last_year_cost_per_case, prev.previous_cost_per_case) == (
        None,
        Decimal("10000.00"),
    )
    steady = found[("H001", "STEADY", "2026-11")].period
    assert (steady.cases, steady.low_ratio_cases, steady.cost_per_case) == (
        5,
        1,
        Decimal("11500.00"),
    )
    assert steady.last_year_cost_per_case == Decimal("10000.00")
    # the case discharged at 00:10 on 1 December local time is December's, alone
    december = found[("H001", "STEADY", "2026-12")].period
    assert (december.cases, december.cost_per_case) == (1, Decimal("3000.00"))
    assert december.previous_cost_per_case == Decimal("11500.00")
    assert found[("H001", "LOW", "2026-11")].period.low_ratio_cases == 2
    # each DRG's months up to the period's, oldest first, three by default
    assert found[("H001", "RUN", "2026-11")].drg_months == {
        "AA11": tuple(
            DrgMonth(month, 2, Decimal("41000.00"), Decimal("40000.00"))
            for month in ("2026-09", "2026-10", "2026-11")
        )
    }
    assert [m.month for m in found[("H001", "GAP", "2026-11")].drg_months["AA11"]] == [
        "2026-09",
        "2026-10",
        "2026-11",
    ]
    # only departments with cases in the month; only the hospitals asked for
    assert ("H001", "GROW", "2026-12") not in found
    assert {key[0] for key in found} == {"H001"}
    assert ("H002", "GROW", "2026-11") in await figures_of(cases, ["2026-11"])


async def test_cases_discharged_after_now_wait_for_a_later_check(cases: Api) -> None:
    async with cases.sessions() as db_session:
        await db_session.execute(
            insert(CaseRecord), [discharged("RUN", "2026-12-10T12:30:00", "1000.00")]
        )
        await db_session.commit()
    # at 12:00 on 10 December: RUN's case of 09:00 that day, not those of 12:30 and the 11th
    found = await figures_of(cases, ["2026-12"], ["H001"])
    assert found[("H001", "RUN", "2026-12")].period.cases == 1
    later = datetime.fromisoformat("2026-12-12T00:00:00+08:00")
    found = await figures_of(cases, ["2026-12"], ["H001"], later)
    assert found[("H001", "RUN", "2026-12")].period.cases == 3


async def rule_alerts(api: Api, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = await api.client.get(
        "/v1/alerts", params={"kind": "rule", "limit": 100}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


async def test_the_rules_raise_their_findings_once_each(cases: Api) -> None:
    assert await sweep(cases.engine, cases.sessions, RULES, ZONE, NOW) == 6

    alerts = await rule_alerts(cases)
    assert sorted(
        (a["hospital_id"], a["department"], a["rule_id"], a["rule_period"]) for a in alerts
    ) == [
        ("H001", "GROW", "cost-per-case-growth", "2026-11"),
        ("H001", "LOW", "low-ratio-share", "2026-11"),
        ("H001", "PREV", "cost-per-case-growth", "2026-11"),
        ("H001", "RUN", "drg-over-standard", "2026-11/AA11"),
        ("H001", "RUN", "drg-over-standard", "2026-12/AA11"),
        ("H002", "GROW", "cost-per-case-growth", "2026-11"),
    ]
    by_department = {(a["hospital_id"], a["department"], a["rule_period"]): a for a in alerts}
    grow = by_department[("H001", "GROW", "2026-11")]
    assert (
        grow
        | {
            "kind": "rule",
            "case_id": "",
            "drg_code": None,
            "level": "yellow",
            "previous_level": "none",
            "transition": "raised",
            "rule_version": 2,
            "status": "open",
        }
        == grow
    )
    assert (
        grow["detail"]
        | {
            "baseline": "same_period_last_year",
            "baseline_cost_per_case": "10000.00",
            "cost_per_case": "12000.00",
            "growth": "0.2000",
        }
        == grow["detail"]
    )
    assert grow["rule_name"] == {
        "zh": "科室例均费用增长过快",
        "en": "Department cost per case rising",
    }
    prev = by_department[("H001", "PREV", "2026-11")]
    assert (prev["detail"]["baseline"], prev["detail"]["growth"]) == ("previous_period", "0.1600")
    assert "no history of last year" in prev["text_en"]
    low = by_department[("H001", "LOW", "2026-11")]
    assert (low["detail"]["low_ratio_cases"], low["detail"]["share"]) == (2, "0.4000")
    run = by_department[("H001", "RUN", "2026-12/AA11")]
    assert (run["level"], run["drg_code"]) == ("red", "AA11")
    assert [m["month"] for m in run["detail"]["months"]] == ["2026-10", "2026-11", "2026-12"]
    assert by_department[("H002", "GROW", "2026-11")]["detail"]["growth"] == "0.5000"

    # the checks after it find the same and raise nothing
    assert await sweep(cases.engine, cases.sessions, RULES, ZONE, NOW) == 0
    assert len(await rule_alerts(cases)) == 6


async def test_a_rule_switched_off_is_not_judged_there(cases: Api) -> None:
    switches = RuleSwitches(
        {
            ("cost-per-case-growth", "H002", None): False,  # all of H002
            ("drg-over-standard", "H001", "RUN"): False,  # one department of H001
        }
    )
    assert await sweep(cases.engine, cases.sessions, RULES, ZONE, NOW, switches) == 3
    assert sorted((a["hospital_id"], a["department"]) for a in await rule_alerts(cases)) == [
        ("H001", "GROW"),
        ("H001", "LOW"),
        ("H001", "PREV"),
    ]


async def test_checks_at_once_raise_each_finding_once(cases: Api) -> None:
    raised = await asyncio.gather(
        *(sweep(cases.engine, cases.sessions, RULES, ZONE, NOW) for _ in range(4))
    )

    assert sum(raised) == 6
    ids = [a["alert_id"] for a in await rule_alerts(cases)]
    assert len(ids) == len(set(ids)) == 6


async def test_a_month_is_judged_in_its_own_time(cases: Api) -> None:
    # on 30 November, November is the current month and October the closed one
    november = datetime.fromisoformat("2026-11-30T23:59:00+08:00")
    assert await sweep(cases.engine, cases.sessions, RULES, ZONE, november) == 5
    # from midnight on 1 December, November has closed: its findings are the same ones
    december = datetime.fromisoformat("2026-12-01T00:00:00+08:00")
    assert await sweep(cases.engine, cases.sessions, RULES, ZONE, december) == 0
    # December so far: RUN's fourth month over, once its first case is discharged
    assert await sweep(cases.engine, cases.sessions, RULES, ZONE, NOW) == 1
    # and in January, November is neither month: nothing of it is judged again
    assert (
        await sweep(cases.engine, cases.sessions, RULES, ZONE, datetime(2027, 1, 5, tzinfo=UTC))
        == 0
    )


async def test_a_new_version_of_a_rule_judges_afresh_and_disabled_rules_not_at_all(
    cases: Api,
) -> None:
    assert await sweep(cases.engine, cases.sessions, RULES, ZONE, NOW) == 6
    growth = next(rule for rule in RULES if rule.id == "cost-per-case-growth")
    revised = growth.model_copy(update={"version": growth.version + 1})
    assert await sweep(cases.engine, cases.sessions, [revised], ZONE, NOW) == 3
    off = [rule.model_copy(update={"enabled": False, "version": 9}) for rule in RULES]
    assert await sweep(cases.engine, cases.sessions, off, ZONE, NOW) == 0


async def test_a_department_head_sees_their_own_departments_rule_alerts(cases: Api) -> None:
    await sweep(cases.engine, cases.sessions, RULES, ZONE, NOW)
    head = await key_for(cases, "grow-head", "department_head", ["H001"], ["GROW"])

    mine = await rule_alerts(cases, head)

    assert [(a["hospital_id"], a["department"]) for a in mine] == [("H001", "GROW")]
    alert_id = mine[0]["alert_id"]
    others = [a for a in await rule_alerts(cases) if a["department"] != "GROW"]
    response = await cases.client.get(f"/v1/alerts/{others[0]['alert_id']}", headers=head)
    assert response.status_code == 404
    response = await cases.client.get(f"/v1/alerts/{alert_id}", headers=head)
    assert response.status_code == 200, response.text


async def test_a_department_rule_alert_is_handled_and_briefed_like_any_alert(cases: Api) -> None:
    await sweep(cases.engine, cases.sessions, RULES, ZONE, NOW)
    [alert] = [a for a in await rule_alerts(cases) if a["department"] == "LOW"]

    detail = await cases.client.get(f"/v1/alerts/{alert['alert_id']}")
    assert detail.status_code == 200, detail.text
    assert (detail.json()["case_id"], detail.json()["explanation"]) == ("", None)
    acknowledged = await cases.client.post(f"/v1/alerts/{alert['alert_id']}/ack", json={})
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    resolved = await cases.client.post(
        f"/v1/alerts/{alert['alert_id']}/resolve",
        json={"reason": "management_gap", "note": "coding reviewed"},
    )
    assert resolved.status_code == 200, resolved.text

    indicator_tests.set_today(cases, "2026-12-12T12:00:00+08:00")
    weekly = "/v1/hospitals/H001/briefings/weekly"
    params = {"department": "LOW", "week": "2026-W50"}
    briefing = (await cases.client.get(weekly, params=params)).json()
    [briefed] = briefing["alerts"]
    assert (briefed["kind"], briefed["rule_id"], briefed["rule_period"]) == (
        "rule",
        "low-ratio-share",
        "2026-11",
    )
    assert (briefed["status"], briefed["reason"]) == ("resolved", "management_gap")
    assert briefing["red_cases"] == []
    csv_text = (await cases.client.get(weekly, params={**params, "format": "csv"})).text
    assert "科室 LOW 2026-11,LOW,黄色,规则预警 · 低倍率病例占比过高：" in csv_text
    page = (await cases.client.get(weekly, params={**params, "format": "html", "lang": "en"})).text
    assert "<td>department LOW 2026-11</td>" in page
    assert "<td>Rule alert · Too many low-ratio cases: " in page


def test_months_shift_across_years_and_the_run_is_the_longest_rule_asks_for() -> None:
    assert [shift_month("2026-01", by) for by in (-1, -12, -13, 11, 12)] == [
        "2025-12",
        "2025-01",
        "2024-12",
        "2026-12",
        "2027-01",
    ]
    run = next(rule for rule in RULES if rule.id == "drg-over-standard")
    six = run.params.model_copy(update={"months": 6})
    longer = run.model_copy(update={"id": "drg-six", "params": six})
    assert drg_run_length(RULES) == 3
    assert drg_run_length([*RULES, longer]) == 6
    assert drg_run_length([*RULES, longer.model_copy(update={"enabled": False})]) == 3
    assert drg_run_length([]) == 1
