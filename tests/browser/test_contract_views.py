"""The views read the endpoints' fields as their contracts name them: the open cases'
summary, the daily alert trend, the indicators, departments and a case's projection,
daily costs and cost by doctor. Those answers are given here in the contract's shape
(fixed figures, so each can be looked for on the page); the rest is the real stack."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.browser import accessibility
from tests.browser.conftest import LAPTOP
from tests.browser.hospital_day import HOSPITAL, ZONE
from tests.browser.test_dashboard import _watch_console, shoot
from tests.integration.harness import Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]

GROUP = {"cases": 3, "total_cost": "123456.7", "standard_cost": "120000"}
SUMMARY = {
    "by_level": {
        "none": {"cases": 7, "total_cost": "52000.10", "standard_cost": "98000.00"},
        "blue": {"cases": 2, "total_cost": "70000.00", "standard_cost": "76000.00"},
        "yellow": GROUP,
        "red": {"cases": 4, "total_cost": "210000.55", "standard_cost": "180000.00"},
        "unpriced": {"cases": 1, "total_cost": "900.00", "standard_cost": "0"},
    },
    "money_at_risk": "33457.25",
    "departments": [
        {
            "department": "CARDIO",
            "open_cases": 9,
            "total_cost": "280000.55",
            "standard_cost": "260000.00",
            "projected_total": "301234.56",
            "projected_overspend": "41234.56",
        },
        {
            "department": "RESP",
            "open_cases": 8,
            "total_cost": "175456.80",
            "standard_cost": "214000.00",
            "projected_total": "199000.00",
            "projected_overspend": "1200.00",
        },
    ],
}
DAILY = {
    "items": [
        {"day": f"2026-11-{day:02d}", "red": day % 3, "yellow": day % 2, "blue": 0}
        for day in range(2, 31)
    ]
    + [{"day": "2026-12-01", "red": 5, "yellow": 1, "blue": 0}]
}
INDICATORS = {
    "cases": 12,
    "total_weight": "20.5",
    "cmi": "1.7083",
    "total_cost": "150000.00",
    "total_standard": "140000.00",
    "budget_execution": "1.0714",
    "surplus": "-10000.00",
    "cost_consumption_index": "1.07",
    "time_consumption_index": "0.93",
    "mean_los_days": "8.2",
    "drug_share": "0.31",
    "consumables_share": "0.22",
    "cost_by_category_share": {"drug": "0.31", "consumable": "0.22", "lab": "0.12", "bed": "0.35"},
    "high_ratio_cases": 1,
    "high_ratio_share": "0.0833",
    "low_ratio_cases": 0,
    "low_ratio_share": "0",
    "cost_per_case": "12500.00",
    "previous_cost_per_case": "11800.00",
    "cost_per_case_change": "0.0593",
}


def _answer(route: Any, body: Any) -> None:
    route.fulfill(status=200, content_type="application/json", body=json.dumps(body))


def _indicators(route: Any) -> None:
    groups = []
    if "group_by=drg" in route.request.url:
        groups = [{"key": "FR13", "name": "Acute myocardial infarction, with CC", **INDICATORS}]
    _answer(
        route,
        {
            "hospital_id": HOSPITAL,
            "from": "2026-12-01",
            "to": "2026-12-01",
            "overall": INDICATORS,
            "groups": groups,
        },
    )


def _case(route: Any) -> None:
    answer = route.fetch()
    case = answer.json()
    case.update(
        projected_total="21000.40",
        projected_ratio="1.1579",
        thresholds={"blue": "0.90", "yellow": "0.95", "red": "1.00"},
        daily_costs=[
            {"day": "2026-11-28", "amount": "3000.00", "cumulative": "3000.00"},
            {"day": "2026-11-29", "amount": "4100.50", "cumulative": "7100.50"},
            {"day": "2026-11-30", "amount": "4100.50", "cumulative": "11201.00"},
            {"day": "2026-12-01", "amount": "7661.01", "cumulative": "18862.01"},
        ],
        cost_by_doctor=[
            {"ordered_by": "D1024", "amount": "12000.00"},
            {"ordered_by": None, "amount": "862.01"},
        ],
    )
    route.fulfill(response=answer, body=json.dumps(case))


def _contracts(page: Any) -> None:
    page.route("**/v1/hospitals/*/open-cases/summary*", lambda route: _answer(route, SUMMARY))
    page.route("**/v1/hospitals/*/alerts/daily*", lambda route: _answer(route, DAILY))
    page.route("**/v1/hospitals/*/indicators*", _indicators)
    page.route(
        "**/v1/hospitals/*/departments",
        lambda route: _answer(
            route, {"items": [{"code": "CARDIO", "name_zh": "心内科", "name_en": "Cardiology"}]}
        ),
    )
    page.route("**/v1/hospitals/*/cases/C-1002", _case)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_views_show_every_contract_field(
    browser: Any,
    hospital: Stack,
    language: str,
) -> None:
    context = browser.new_context(viewport=LAPTOP, locale="zh-CN" if language == "zh" else "en")
    try:
        page = context.new_page()
        problems = _watch_console(page)
        _contracts(page)

        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        expect(page.get_by_test_id("money-at-risk")).to_have_text("33,457.25")
        expect(page.get_by_test_id("count-red")).to_contain_text("4")
        levels = page.locator("[data-level=red]").inner_text()
        assert "210,000.55" in levels and "180,000.00" in levels
        ranking = page.get_by_role("table").filter(has_text="41,234.56").first.inner_text()
        assert ranking.index("CARDIO") < ranking.index("RESP")
        assert "301,234.56" in ranking
        page.get_by_text("数据表" if language == "zh" else "Data table").first.click()
        assert "2026-12-01" in page.locator("table.plain").first.inner_text()
        shoot(page, f"overview-full-{language}-laptop")

        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/CARDIO")
        name = "心内科 (CARDIO)" if language == "zh" else "Cardiology (CARDIO)"
        page.get_by_role("heading", name=name, exact=False).wait_for()
        # open 280,000.55 of 260,000.00 and discharged 150,000.00 of 140,000.00:
        # 430,000.55 / 400,000.00 = 107.5%
        expect(page.get_by_test_id("budget-execution")).to_have_text("107.5%")
        assert "430,000.55" in page.inner_text("body")
        drgs = page.get_by_role("table").filter(has_text="FR13 ").last.inner_text()
        assert "1.07" in drgs and "0.93" in drgs and "12,500.00" in drgs
        shoot(page, f"department-full-{language}-laptop")

        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/cases/C-1002")
        summary = page.get_by_test_id("case-summary")
        expect(summary).to_contain_text("21,000.40")
        expect(summary).to_contain_text("115.8%")
        page.locator("canvas").first.wait_for()
        body = page.inner_text("body")
        assert "D1024" in body and "12,000.00" in body
        assert ("未记录" if language == "zh" else "Not recorded") in body
        for summary_toggle in page.locator("details.chart-table summary").all():
            summary_toggle.click()
        tables = " ".join(page.locator("table.plain").all_inner_texts())
        assert "18,862.01" in tables and "2026-11-29" in tables
        assert "35.0%" in tables  # the DRG's typical share of bed
        shoot(page, f"case-full-{language}-laptop")
        assert problems == []
    finally:
        context.close()


def _periods_asked(urls: list[str]) -> set[tuple[str, str]]:
    asked = set()
    for url in urls:
        query = parse_qs(urlparse(url).query)
        asked.add((query["from"][0], query["to"][0]))
    return asked


def _wait_for(page: Any, condition: Callable[[], bool]) -> None:
    """Until `condition` holds; the page's events are seen while Playwright waits."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the page never asked"
        page.wait_for_timeout(100)


def test_the_period_defaults_to_the_last_30_days_and_can_be_chosen(
    browser: Any,
    hospital: Stack,
) -> None:
    today = datetime.now(ZONE).date()
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - timedelta(days=1)
    last_30 = ((today - timedelta(days=29)).isoformat(), today.isoformat())
    last_month = (last_month_end.replace(day=1).isoformat(), last_month_end.isoformat())
    this_year = (date(today.year, 1, 1).isoformat(), today.isoformat())
    context = browser.new_context(viewport=LAPTOP, locale="en")
    try:
        page = context.new_page()
        problems = _watch_console(page)
        _contracts(page)
        indicators: list[str] = []
        daily: list[str] = []
        page.on(
            "request",
            lambda request: (
                indicators.append(request.url)
                if "/indicators?" in request.url
                else daily.append(request.url)
                if "/alerts/daily?" in request.url
                else None
            ),
        )

        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/CARDIO")
        expect(page.get_by_test_id("budget-execution")).to_have_text("107.5%")
        expect(page.get_by_test_id("period-range")).to_have_text(" – ".join(last_30))
        _wait_for(page, lambda: len(indicators) == 2)
        assert _periods_asked(indicators) == {last_30}

        indicators.clear()
        page.get_by_test_id("period-choice").click()
        page.get_by_role("option", name="Last month").click()
        expect(page.get_by_test_id("period-range")).to_have_text(" – ".join(last_month))
        page.wait_for_url("**period=lastMonth")
        expect(
            page.get_by_text(f"Cases discharged {last_month[0]} to {last_month[1]}")
        ).to_be_visible()
        _wait_for(page, lambda: len(indicators) == 2)  # the overall and the DRG figures
        assert _periods_asked(indicators) == {last_month}

        # the breadcrumb back to the overview keeps the period; the overview asks for it
        indicators.clear()
        daily.clear()
        page.get_by_role("link", name=f"Overview · {HOSPITAL}").click()
        page.wait_for_url(re.compile(r"/\?hospital=.*period=lastMonth"))
        discharged = page.get_by_test_id("discharged")
        expect(discharged).to_contain_text("107.1%")  # the hospital's budget execution
        expect(discharged).to_contain_text("12,500.00")
        expect(discharged).to_contain_text("1.71")
        _wait_for(page, lambda: len(indicators) == 1 and len(daily) == 1)
        assert _periods_asked(indicators) == {last_month}
        days = int(parse_qs(urlparse(daily[0]).query)["days"][0])
        assert days == (today - last_month_end.replace(day=1)).days + 1
        # the trend shows the period's days only
        page.get_by_text("Data table").first.click()
        trend = page.locator("table.plain").first.inner_text()
        for item in DAILY["items"]:
            inside = last_month[0] <= str(item["day"]) <= last_month[1]
            assert (str(item["day"]) in trend) == inside, item["day"]

        indicators.clear()
        page.get_by_test_id("period-choice").click()
        page.get_by_role("option", name="This year").click()
        expect(page.get_by_test_id("period-range")).to_have_text(" – ".join(this_year))
        expect(discharged).to_contain_text(f"{this_year[0]} to {this_year[1]}")
        _wait_for(page, lambda: len(indicators) == 1)
        assert _periods_asked(indicators) == {this_year}
        shoot(page, "overview-period-en-laptop")
        assert problems == []
    finally:
        context.close()


# a department's pace against its target: no case, the department's code, the period and
# measure the target is for; total_cost the measure so far, standard_cost the target
TARGET_ALERT = {
    "alert_id": "target-H001-CARDIO-2026-12-total_cost-red",
    "kind": "target",
    "hospital_id": HOSPITAL,
    "case_id": "",
    "department": "CARDIO",
    "drg_code": None,
    "target_period": "2026-12",
    "target_measure": "total_cost",
    "level": "red",
    "previous_level": "yellow",
    "transition": "escalated",
    "total_cost": "98000.00",
    "standard_cost": "120000.00",
    "ratio": "1.0420",
    "projected_total": "125040.00",
    "projected_ratio": None,
    "event_id": "target-CARDIO-2026-12",
    "occurred_at": "2026-12-01T09:30:00+08:00",
    "raised_at": "2026-12-01T09:31:00+08:00",
    "top_contributors": [],
    "status": "open",
}
PER_CASE_ALERT = {
    **TARGET_ALERT,
    "alert_id": "target-H001-CARDIO-2026-cost_per_case-yellow",
    "target_period": "2026",
    "target_measure": "cost_per_case",
    "level": "yellow",
    "previous_level": "blue",
    "total_cost": "12500.00",
    "standard_cost": "13000.00",
    "ratio": "0.9612",
    "projected_total": None,
}
TARGET_TEXT = {
    "zh": (
        "心内科 (CARDIO) 2026-12 总费用预计达目标的 104.2%",
        "心内科 (CARDIO) 2026 次均费用为目标的 96.1%",
    ),
    "en": (
        "Cardiology (CARDIO): total cost projected at 104.2% of its 2026-12 target",
        "Cardiology (CARDIO): cost per case at 96.1% of its 2026 target",
    ),
}


def _target_alerts(page: Any, acted: list[tuple[str, Any]]) -> None:
    """The live feed brings the target alert; the department's list holds both target
    alerts beside its real case alerts; acting on them is answered (and recorded) here."""
    feed = f"retry: 600000\nid: 1\nevent: alert\ndata: {json.dumps(TARGET_ALERT)}\n\n"
    page.route(
        re.compile(r"/v1/alerts/stream\?"),
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=feed),
    )

    def alert_list(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        if "department=CARDIO" in route.request.url:
            body["items"] = [TARGET_ALERT, PER_CASE_ALERT, *body["items"]]
        route.fulfill(response=answer, body=json.dumps(body))

    def action(route: Any) -> None:
        acted.append((route.request.url, route.request.post_data_json))
        _answer(route, {**TARGET_ALERT, "status": "acknowledged", "actions": []})

    page.route(re.compile(r"/v1/alerts\?"), alert_list)
    page.route(re.compile(r"/v1/alerts/target-[^/]+/(ack|resolve)$"), action)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_department_target_alert_reads_as_a_sentence_and_opens_the_department(
    browser: Any,
    hospital: Stack,
    language: str,
) -> None:
    total_text, per_case_text = TARGET_TEXT[language]
    context = browser.new_context(viewport=LAPTOP, locale="zh-CN" if language == "zh" else "en")
    try:
        page = context.new_page()
        problems = _watch_console(page)
        _contracts(page)
        acted: list[tuple[str, Any]] = []
        _target_alerts(page, acted)

        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        live = page.get_by_test_id("live-alerts")
        expect(live).to_contain_text(total_text)
        item = live.locator("li").filter(has_text=total_text)
        assert "09:30" in item.inner_text() and "09:31" not in item.inner_text()  # when it occurred
        assert live.locator("a[href*='/cases/']").count() == 0
        shoot(page, f"overview-target-alert-{language}-laptop")
        item.get_by_role("link", name=total_text).click()
        page.wait_for_url(f"**/hospitals/{HOSPITAL}/departments/CARDIO")

        name = "科室：心内科 (CARDIO)" if language == "zh" else "Department: Cardiology (CARDIO)"
        page.get_by_role("heading", name=name).wait_for()
        heading = "本科室预警" if language == "zh" else "Alerts of this department"
        alerts = page.locator(".el-card").filter(has=page.get_by_role("heading", name=heading))
        target_row = alerts.get_by_role("row").filter(has_text=total_text)
        expect(target_row).to_contain_text("98,000.00")
        expect(target_row).to_contain_text("120,000.00")  # the target
        expect(target_row).to_contain_text("125,040.00")  # the projection to the month's end
        link = target_row.get_by_role("link", name=total_text)
        expect(link).to_have_attribute("href", f"/hospitals/{HOSPITAL}/departments/CARDIO")
        per_case_row = alerts.get_by_role("row").filter(has_text=per_case_text)
        expect(per_case_row).to_contain_text("12,500.00")
        assert "125,040.00" not in per_case_row.inner_text()  # no projection for cost per case
        for row in (target_row, per_case_row):
            assert row.locator("a[href*='/cases/']").count() == 0
        # the department's case alerts are listed beside them, with their case links
        expect(alerts.locator("a[href*='/cases/C-1002']").first).to_be_visible()
        shoot(page, f"department-target-alert-{language}-laptop")

        target_row.get_by_role("button", name="确认" if language == "zh" else "Acknowledge").click()
        page.get_by_text("操作已完成" if language == "zh" else "Done").first.wait_for()
        assert acted[0][0].endswith(f"/v1/alerts/{TARGET_ALERT['alert_id']}/ack")

        per_case_row.get_by_role("button", name="处理" if language == "zh" else "Resolve").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(per_case_text)
        dialog.locator(".el-select__wrapper").click()
        page.get_by_role("option", name="价格调整" if language == "zh" else "Price change").click()
        dialog.get_by_role("button", name="提交" if language == "zh" else "Submit").click()
        expect(dialog).to_be_hidden()
        assert acted[1][0].endswith(f"/v1/alerts/{PER_CASE_ALERT['alert_id']}/resolve")
        assert acted[1][1] == {"reason": "price_change"}
        assert problems == []
    finally:
        context.close()


# a department's progress against its targets: this month's target is a twelfth of the
# year's; the year has its own
def _progress(period: str) -> dict[str, Any]:
    year = period[:4]
    monthly = len(period) == 7
    return {
        "period": period,
        "elapsed_share": "0.0323" if monthly else "0.9151",
        "items": [
            {
                "department": "CARDIO",
                "target": {
                    "period": year,
                    "cases": 100 if monthly else 1200,
                    "cost_per_case": "15000.00",
                    "total_cost": "1500000.00" if monthly else "18000000.00",
                },
                "actual": {"cases": 5, "cost_per_case": "16200.40", "total_cost": "81002.00"},
                "projected": {
                    "cases": 155 if monthly else 1150,
                    "cost_per_case": "16200.40",
                    "total_cost": "2511062.00" if monthly else "17321987.65",
                },
                "pace": {
                    "cases": "ahead" if monthly else "on_track",
                    "cost_per_case": "over",
                    "total_cost": "over" if monthly else "on_track",
                },
            }
        ],
    }


STORED_TARGET = {
    "hospital_id": HOSPITAL,
    "department": "CARDIO",
    "cases": 1200,
    "cost_per_case": "15000.00",
    "total_cost": "18000000.00",
    "updated_by": "office",
    "updated_at": "2026-11-20T08:00:00+08:00",
}
CSRF = "csrf-for-this-page"


def _session(role: str) -> dict[str, Any]:
    return {
        "signed_in": True,
        "sign_in_required": False,
        "mode": "embedded",
        "identity": {
            "identity_id": f"id-{role}",
            "name": "Wang" if role == "insurance_office" else "Dr Li",
            "role": role,
            "hospitals": [HOSPITAL],
            "departments": ["CARDIO"] if role == "department_head" else [],
        },
        "csrf_token": CSRF,
        "expires_at": None,
        "timezone": "Asia/Shanghai",
    }


def _targets(page: Any, role: str, changes: list[tuple[str, str, Any, dict[str, str]]]) -> None:
    """The session of `role`, the targets' endpoints answered here; changes are recorded."""
    year = str(datetime.now(ZONE).year)
    page.route("**/v1/session", lambda route: _answer(route, _session(role)))

    def progress(route: Any) -> None:
        period = parse_qs(urlparse(route.request.url).query)["period"][0]
        _answer(route, _progress(period))

    def targets(route: Any) -> None:
        request = route.request
        if request.method == "GET":
            _answer(route, {"items": [{**STORED_TARGET, "period": year}]})
            return
        changes.append((request.method, request.url, request.post_data_json, request.headers))
        if request.method == "DELETE":
            route.fulfill(status=204)
            return
        period = urlparse(request.url).path.rsplit("/", 1)[1]
        _answer(route, {**STORED_TARGET, **request.post_data_json, "period": period})

    page.route(re.compile(r"/v1/hospitals/[^/]+/targets/progress\?"), progress)
    page.route(re.compile(r"/v1/hospitals/[^/]+/targets(\?.*)?$"), targets)
    page.route(re.compile(r"/v1/hospitals/[^/]+/targets/CARDIO/[0-9-]+$"), targets)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_targets_card_shows_progress_and_sets_a_periods_targets(
    browser: Any,
    hospital: Stack,
    language: str,
) -> None:
    zh = language == "zh"
    today = datetime.now(ZONE).date()
    next_month = (today.replace(day=28) + timedelta(days=4)).strftime("%Y-%m")
    context = browser.new_context(viewport=LAPTOP, locale="zh-CN" if zh else "en")
    try:
        page = context.new_page()
        problems = _watch_console(page)
        _contracts(page)
        changes: list[tuple[str, str, Any, dict[str, str]]] = []
        _targets(page, "insurance_office", changes)

        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/CARDIO")
        card = page.get_by_test_id("targets-card")
        month = card.get_by_test_id("targets-thisMonth")
        year = card.get_by_test_id("targets-thisYear")
        expect(month).to_contain_text(today.strftime("%Y-%m"))
        expect(month.get_by_test_id("elapsed")).to_contain_text("3.2%")
        expect(month.get_by_test_id("target-source")).to_have_text(
            f"目标：{today.year} 年目标的十二分之一"
            if zh
            else f"Target: a twelfth of the {today.year} target"
        )
        expect(year.get_by_test_id("target-source")).to_have_text(
            "目标：本年目标" if zh else "Target: the year's own"
        )
        total_row = month.get_by_role("row").filter(has_text="总费用" if zh else "Total cost")
        expect(total_row).to_contain_text("1,500,000.00")  # the target
        expect(total_row).to_contain_text("81,002.00")  # so far
        expect(total_row).to_contain_text("2,511,062.00")  # projected
        expect(total_row).to_contain_text("超目标" if zh else "Over")
        cases_row = month.get_by_role("row").filter(has_text="病例数" if zh else "Cases")
        expect(cases_row).to_contain_text("超进度" if zh else "Ahead")
        expect(year.locator("[data-pace=on_track]").first).to_have_text(
            "进度正常" if zh else "On track"
        )
        shoot(page, f"department-targets-{language}-laptop")

        # the overview's table of this month's department targets, linking to the department
        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        table = page.get_by_test_id("department-targets")
        row = table.get_by_role("row").filter(has_text="CARDIO")
        expect(row).to_contain_text("2,511,062.00 / 1,500,000.00")
        expect(row.locator("[data-pace=over]")).to_have_count(2)
        expect(row.locator("[data-pace=ahead]")).to_have_text("超进度" if zh else "Ahead")
        shoot(page, f"overview-targets-{language}-laptop")
        row.get_by_role("link").click()
        page.wait_for_url(f"**/hospitals/{HOSPITAL}/departments/CARDIO*")

        card.get_by_test_id("set-targets").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_test_id("target-period").click()
        page.get_by_role("option", name=f"({next_month})").click()
        cases_input = dialog.get_by_label("病例数（例）" if zh else "Cases")
        cases_input.fill("-5")
        dialog.get_by_test_id("save-targets").click()
        expect(dialog).to_contain_text("请输入正整数" if zh else "Enter a whole number above zero")
        dialog.get_by_label("次均费用（元）" if zh else "Cost per case (CNY)").fill("15000.555")
        expect(dialog).to_contain_text(
            "请输入正数，最多两位小数"
            if zh
            else "Enter an amount above zero with at most 2 decimals"
        )
        assert changes == []
        cases_input.fill("120")
        dialog.get_by_label("次均费用（元）" if zh else "Cost per case (CNY)").fill("15000.5")
        dialog.get_by_label("总费用（元）" if zh else "Total cost (CNY)").fill("1800000.00")
        page.mouse.move(0, 0)  # off the save button clicked above (its hover colours are faint)
        shoot(page, f"set-targets-filled-{language}-laptop")
        found = accessibility.violations(page)
        assert not accessibility.failing(found), accessibility.report("set targets", found)
        # saved, the card asks for its progress again
        with page.expect_request(re.compile(r"/targets/progress\?")):
            dialog.get_by_test_id("save-targets").click()
        expect(dialog).to_be_hidden()
        method, url, body, headers = changes[0]
        assert method == "PUT"
        assert urlparse(url).path == f"/v1/hospitals/{HOSPITAL}/targets/CARDIO/{next_month}"
        assert body == {"cases": 120, "cost_per_case": "15000.5", "total_cost": "1800000.00"}
        assert headers["x-csrf-token"] == CSRF

        # this year's stored targets fill the form; they can be removed
        card.get_by_test_id("set-targets").click()
        dialog.get_by_test_id("target-period").click()
        page.get_by_role("option", name=f"({today.year})").click()
        expect(dialog.get_by_label("总费用（元）" if zh else "Total cost (CNY)")).to_have_value(
            "18000000.00"
        )
        with page.expect_request(re.compile(r"/targets/progress\?")):
            dialog.get_by_test_id("remove-targets").click()
        expect(dialog).to_be_hidden()
        method, url, body, headers = changes[1]
        assert method == "DELETE"
        assert urlparse(url).path == f"/v1/hospitals/{HOSPITAL}/targets/CARDIO/{today.year}"
        assert headers["x-csrf-token"] == CSRF
        assert problems == []
    finally:
        context.close()


def test_a_department_head_sees_the_targets_but_cannot_set_them(
    browser: Any,
    hospital: Stack,
) -> None:
    context = browser.new_context(viewport=LAPTOP, locale="en")
    try:
        page = context.new_page()
        problems = _watch_console(page)
        _contracts(page)
        changes: list[tuple[str, str, Any, dict[str, str]]] = []
        _targets(page, "department_head", changes)
        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/CARDIO")
        card = page.get_by_test_id("targets-card")
        expect(card.get_by_test_id("targets-thisMonth")).to_contain_text("1,500,000.00")
        expect(card.get_by_role("button")).to_have_count(0)
        assert changes == []
        shoot(page, "department-targets-head-en-laptop")
        assert problems == []
    finally:
        context.close()
