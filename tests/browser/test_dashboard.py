"""The dashboard as people use it, in Chromium against the real stack.

Events go in through the API (as the hospital's systems post them), through Kafka and the
worker; the page is what the service serves. Each view is saved as a screenshot (zh and
en, laptop and tablet) under test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import accessibility
from tests.browser.conftest import LAPTOP, SCREENSHOTS, TABLET, TABLET_LANDSCAPE
from tests.browser.hospital_day import HOSPITAL, STANDARD, ZONE, a_stay, charge, share
from tests.integration.harness import Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _watch_console(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: Any) -> None:
        text = message.text
        # an endpoint this build does not serve yet answers 404; the page shows "—"
        if message.type == "error" and "status of 404" not in text:
            problems.append(text)

    page.on("console", console)
    return problems


@pytest.fixture
def browser_page(browser: Any, hospital: Stack) -> Iterator[tuple[Any, list[str]]]:
    context = browser.new_context(viewport=LAPTOP, locale="zh-CN", timezone_id="Europe/Berlin")
    page = context.new_page()
    problems = _watch_console(page)
    try:
        yield page, problems
    finally:
        context.close()


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # charts finish their first frame
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def count(page: Any, level: str) -> str:
    return str(page.get_by_test_id(f"count-{level}").inner_text()).split()[0]


def test_overview_counts_and_a_new_alert_arrive_without_a_reload(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    page, problems = browser_page
    page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
    page.get_by_text("全院总览").first.wait_for()
    expect(page.get_by_test_id("count-red")).to_contain_text("1", timeout=15_000)
    assert (count(page, "red"), count(page, "yellow"), count(page, "blue")) == ("1", "1", "1")
    page.get_by_text("实时连接正常").wait_for(timeout=15_000)
    page.evaluate("window.__same_document = true")

    # C-2001 goes over its standard
    hospital.post(
        [
            charge(
                "C-2001",
                "late",
                share("ES33", "0.45"),
                department="RESP",
                days_ago=0.1,
                item=("P7788", "Bronchoscopy with lavage", "procedure"),
            )
        ]
    )
    live = page.get_by_test_id("live-alerts")
    # its cost alert (the day's charges also trip the shipped rule daily-spike)
    cost_alert = live.locator("li", has_text="C-2001").filter(has_not_text="规则预警")
    cost_alert.first.wait_for(timeout=15_000)
    expect(cost_alert.first).to_contain_text("红色预警")
    expect(page.get_by_test_id("count-red")).to_have_text(re.compile(r"^\s*2\b"), timeout=15_000)
    assert page.evaluate("window.__same_document") is True  # no reload happened
    assert problems == []


def test_the_feed_opens_with_the_alerts_raised_before_the_page(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    page, problems = browser_page
    page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
    earlier = page.get_by_test_id("earlier-alerts")
    earlier.locator("li").first.wait_for(timeout=15_000)
    newest = hospital.all_alerts(hospital_id=HOSPITAL)[0]
    assert newest["case_id"] in earlier.locator("li").first.inner_text()
    # C-1002 went red while the hospital's day was posted, before the page opened: among
    # the cost alerts (the shipped rules' findings on the same charges came after it)
    page.get_by_test_id("kind-filter").get_by_text("费用", exact=True).click()
    earlier.locator("li", has_text="C-1002").filter(has_text="红色预警").first.wait_for(
        timeout=15_000
    )
    assert "规则预警" not in earlier.inner_text()
    assert problems == []


def test_drill_from_overview_to_department_to_case_and_acknowledge(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    page, problems = browser_page
    page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
    page.get_by_text("实时连接正常").wait_for(timeout=15_000)
    hospital.post(
        [charge("C-1001", "more", share("FM15", "0.05"), department="CARDIO", days_ago=0.05)]
    )
    live = page.get_by_test_id("live-alerts")
    live.get_by_role("link", name="CARDIO").first.click()
    page.wait_for_url(f"**/hospitals/{HOSPITAL}/departments/CARDIO")
    page.get_by_role("heading", name="科室：CARDIO").wait_for()
    cases = page.get_by_role("table").filter(has_text="C-1002")
    cases.first.wait_for()
    page.get_by_role("link", name="C-1002").first.click()
    page.wait_for_url(f"**/hospitals/{HOSPITAL}/cases/C-1002")
    summary = page.get_by_test_id("case-summary")
    summary.wait_for()
    case = httpx.get(f"{hospital.url}/v1/hospitals/{HOSPITAL}/cases/C-1002").json()
    figures = summary.inner_text()
    assert "红色预警" in figures
    total = Decimal(case["total_cost"]).quantize(Decimal("0.01"))
    assert f"{total:,.2f}" in figures  # money as the API gave it, with separators
    assert "Drug-eluting coronary stent" in page.inner_text("body")
    # why it is red, in the sentence the API gives (three clicks from the overview)
    why = page.get_by_test_id("case-why").inner_text()
    assert case["explanation"]["summary_zh"] in why.replace("\n", " ")

    # acknowledge the case's red alert
    page.get_by_role("button", name="确认").first.click()
    page.get_by_text("操作已完成").wait_for()
    statuses = {
        alert["status"]
        for alert in httpx.get(
            f"{hospital.url}/v1/alerts",
            params={"hospital_id": HOSPITAL, "case_id": "C-1002", "level": "red"},
        ).json()["items"]
    }
    assert "acknowledged" in statuses
    page.get_by_test_id("timeline").get_by_text("已确认").first.wait_for()
    assert problems == []


def _local_minute(moment: str) -> str:
    """An API time as the page shows it in Chinese: the hospital's zone, to the minute."""
    return datetime.fromisoformat(moment).astimezone(ZONE).strftime("%Y/%m/%d %H:%M")


def test_alerts_are_dated_when_the_case_crossed_the_line(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    # C-1002's last charge was posted as having happened half a day ago: its red alert
    # occurred then, and was raised when the worker saw the charge
    page, problems = browser_page
    red = httpx.get(
        f"{hospital.url}/v1/alerts",
        params={"hospital_id": HOSPITAL, "case_id": "C-1002", "level": "red"},
    ).json()["items"]
    alert = next(item for item in red if item["kind"] == "level")
    occurred, raised = _local_minute(alert["occurred_at"]), _local_minute(alert["raised_at"])
    assert occurred != raised

    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/CARDIO")
    alerts_card = page.locator(".el-card", has=page.get_by_role("heading", name="本科室预警"))
    row = alerts_card.locator(".el-table__row", has_text="104.0%").first
    expect(row).to_contain_text(occurred)
    assert raised not in row.inner_text()

    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/cases/C-1002")
    timeline_card = page.locator(".el-card", has=page.get_by_role("heading", name="预警与处理记录"))
    row = timeline_card.locator(".el-table__row", has_text="104.0%").first
    expect(row.get_by_test_id("alert-occurred")).to_have_text(occurred)
    expect(row.get_by_test_id("alert-raised")).to_have_text(f"系统预警于 {raised}")
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text(f"{occurred} · 系统预警于 {raised}")
    assert problems == []


def _first_case(page: Any) -> str:
    return str(page.locator(".el-table__body a[href*='/cases/']").first.inner_text())


def test_the_case_table_sorts_from_the_keyboard(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    # CARDIO: C-1002 is at 104% of a small standard, C-1001 at 92% of a large one, so
    # by ratio C-1002 leads and by cost so far C-1001 does
    page, problems = browser_page
    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/CARDIO")
    page.get_by_role("link", name="C-1001").first.wait_for()
    assert _first_case(page) == "C-1002"
    ratio_cell = page.locator("th", has=page.get_by_role("button", name="按费用比排序（从高到低）"))
    expect(ratio_cell).to_have_attribute("aria-sort", "descending")

    target = "按累计费用排序（从高到低）"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == target:
            break
    else:
        raise AssertionError(f"Tab never reached the button {target!r}")
    page.keyboard.press("Enter")
    expect(page.locator(".el-table__body a[href*='/cases/']").first).to_have_text("C-1001")
    cost_cell = page.locator("th", has=page.get_by_role("button", name=target))
    expect(cost_cell).to_have_attribute("aria-sort", "descending")
    expect(ratio_cell).to_have_attribute("aria-sort", "none")

    for _ in range(3):  # back past days over stay and projected ratio, to ratio
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Space")
    expect(page.locator(".el-table__body a[href*='/cases/']").first).to_have_text("C-1002")
    expect(ratio_cell).to_have_attribute("aria-sort", "descending")
    shoot(page, "department-sorted-by-keyboard-zh-laptop")
    assert problems == []


def test_the_language_switches_and_is_remembered(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    page, problems = browser_page
    page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
    page.get_by_role("heading", name="全院总览").wait_for()
    page.get_by_text("English", exact=True).click()
    page.get_by_role("heading", name="Hospital overview").wait_for()
    assert page.evaluate("document.documentElement.lang") == "en"
    page.reload()
    page.get_by_role("heading", name="Hospital overview").wait_for()
    page.get_by_text("中文", exact=True).click()
    page.get_by_role("heading", name="全院总览").wait_for()
    assert problems == []


def test_english_is_the_default_for_a_browser_that_prefers_it(
    browser: Any, hospital: Stack
) -> None:
    context = browser.new_context(viewport=LAPTOP, locale="en-US")
    try:
        page = context.new_page()
        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        page.get_by_role("heading", name="Hospital overview").wait_for()
    finally:
        context.close()


def _department_head_key(stack: Stack) -> str:
    """`drgwatch users create`: a head of CARDIO at H001, and the key it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "users", "create", f"Dr Li {uuid.uuid4().hex[:6]}"]
        + ["--role", "department_head", "--hospital", HOSPITAL, "--department", "CARDIO"]
        + ["--database-url", stack.database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = re.search(r"(dwk_\S+)", done.stdout)
    assert found, done.stdout
    return found.group(1)


def test_a_department_head_cannot_open_another_departments_case_by_url(
    browser: Any, hospital: Stack
) -> None:
    # the head's browser presents its key on every request (as a signed-in session would)
    key = _department_head_key(hospital)
    context = browser.new_context(
        viewport=LAPTOP, locale="zh-CN", extra_http_headers={"Authorization": f"Bearer {key}"}
    )
    try:
        page = context.new_page()
        problems = _watch_console(page)
        seen: list[str] = []
        page.on("response", lambda response: seen.append(f"{response.status} {response.url}"))
        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/cases/C-2002")
        page.get_by_test_id("case-not-found").wait_for()
        body = page.inner_text("body")
        assert "RESP" not in body and "ES31" not in body and "C-2002" in body  # only the URL's id
        assert any(line.startswith("404 ") and "/cases/C-2002" in line for line in seen)
        # their own department's case opens
        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/cases/C-1001")
        page.get_by_test_id("case-summary").wait_for()
        assert problems == []
    finally:
        context.close()


def test_precheck_shows_where_the_case_would_land(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    page, problems = browser_page
    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/cases/C-2002")
    page.get_by_test_id("case-summary").wait_for()
    page.get_by_label("项目编码").fill("C0451")
    page.get_by_label("数量").fill("1")
    page.get_by_label("单价（元）").fill("2000.00")
    page.get_by_label("单价（元）").press("Enter")
    result = page.get_by_test_id("precheck-result")
    result.wait_for()
    assert "2,000.00" in result.inner_text()
    assert "将跨越预警级别" in page.inner_text("body")
    assert problems == []


def _landing(total: Decimal, standard: Decimal) -> str:
    """A total and its ratio to the standard as the page shows them: "38,342.77 · 94.9%"."""
    ratio = (total / standard * 100).quantize(Decimal("0.1"))
    return f"{total:,.2f} · {ratio}%"


def test_precheck_prices_an_item_from_the_chargemaster_and_lists_cheaper_equivalents(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    # a coronary care case at 93% of its standard; from the sample chargemaster, the
    # imported stent (11800.00) takes it over the standard, the domestic stents of its
    # equivalence group keep it under: 770.00 lands at blue, 848.00 just over yellow's 95%
    page, problems = browser_page
    hospital.post(a_stay("C-7001", "FM15", "CCU", "0.93"))
    hospital.wait_for(lambda: (hospital.case(HOSPITAL, "C-7001") or {}).get("level") == "blue", 60)
    total, standard = share("FM15", "0.93"), STANDARD["FM15"]
    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/cases/C-7001")
    page.get_by_test_id("case-summary").wait_for()
    assert page.get_by_label("单价（元）").get_attribute("placeholder") == "取自收费目录"

    # the code's suggestions come from the chargemaster: a search by name
    page.get_by_label("项目编码").press_sequentially("支架")
    suggestions = page.locator(".precheck-suggestions li")
    # the three stents and the stenting procedure
    expect(suggestions).to_have_count(4, timeout=10_000)
    codes = {text.split()[0] for text in suggestions.all_inner_texts()}
    assert codes == {"C-STENT-IMP", "C-STENT-DOM", "C-STENT-DOM2", "P-PCI"}, codes
    # the keys move through them, and the input names the option it is on
    page.get_by_label("项目编码").press("ArrowDown")
    current = page.get_by_label("项目编码").get_attribute("aria-activedescendant")
    assert current and page.locator(f"[id='{current}']").inner_text().startswith("C-STENT-DOM")
    suggestions.filter(has_text="C-STENT-IMP").click()
    expect(page.get_by_label("项目编码")).to_have_value("C-STENT-IMP")
    expect(page.get_by_test_id("precheck-picked")).to_contain_text("11,800.00")
    page.get_by_label("数量").fill("1")
    page.get_by_role("button", name="预审", exact=True).click()

    result = page.get_by_test_id("precheck-result")
    result.wait_for()
    expect(result).to_contain_text(_landing(total + Decimal("11800.00"), standard))
    expect(result).to_contain_text("红色预警")
    item = result.get_by_test_id("precheck-items").locator(".el-table__row")
    expect(item).to_have_count(1)
    expect(item.get_by_test_id("precheck-unit-price")).to_have_text("11,800.00")
    expect(item.locator("[data-source=chargemaster]")).to_have_text("收费目录")
    expect(item).to_contain_text("进口药物洗脱冠状动脉支架")

    alternatives = result.locator("[data-testid=precheck-alternatives][data-item=C-STENT-IMP]")
    expect(alternatives.get_by_role("heading")).to_contain_text("CORONARY-DES")
    rows = alternatives.locator(".el-table__row")
    expect(rows).to_have_count(2)
    cheapest, next_one = rows.nth(0), rows.nth(1)
    for row, code, price, saving, level, colour in [
        (cheapest, "C-STENT-DOM", "770.00", "11,030.00", "蓝色预警", "blue"),
        (next_one, "C-STENT-DOM2", "848.00", "10,952.00", "黄色预警", "yellow"),
    ]:
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == code and "国产药物洗脱冠状动脉支架" in cells[1], cells
        assert (cells[2], cells[3]) == (price, saving), cells
        assert _landing(total + Decimal(price), standard) in cells[4], cells
        expect(row.locator(f".level-tag.{colour}")).to_have_text(level)
    shoot(page, "case-precheck-alternatives-zh-laptop")
    found = accessibility.violations(page)
    assert not accessibility.failing(found), accessibility.report("precheck zh", found)

    # in English the items are named by the chargemaster's English names
    page.get_by_text("English", exact=True).click()
    expect(rows.nth(0).locator("td").nth(1)).to_have_text(
        "Domestic drug-eluting coronary stent (cobalt-chromium)"
    )
    expect(item.locator("[data-source=chargemaster]")).to_have_text("Chargemaster")
    expect(rows.nth(1).locator(".level-tag")).to_have_text("Yellow alert")
    shoot(page, "case-precheck-alternatives-en-laptop")
    page.get_by_text("中文", exact=True).click()

    # an item the chargemaster does not hold, given no price: the API's reason beside the form
    page.get_by_label("项目编码").fill("X-99")
    page.get_by_role("button", name="预审", exact=True).click()
    refusal = page.get_by_test_id("precheck-refusal")
    expect(refusal).to_contain_text("X-99 不在今日有效的收费目录中")
    expect(refusal).to_contain_text("items.0.unit_price: item X-99 has no unit_price")
    expect(page.get_by_text("请填写单价", exact=True)).to_be_visible()
    expect(result).to_have_count(0)
    shoot(page, "case-precheck-refused-zh-laptop")
    found = accessibility.violations(page)
    assert not accessibility.failing(found), accessibility.report("precheck refused zh", found)
    # the refusal is the one error the browser logs: its 422 answer
    assert [problem for problem in problems if "status of 422" not in problem] == []


def test_the_accessibility_check_finds_what_it_looks_for(browser: Any) -> None:
    # a page with a nameless button, faint text (in a table too) and an image without text:
    # the check fails it, and its report shows each element
    context = browser.new_context(viewport=LAPTOP)
    try:
        page = context.new_page()
        page.set_content(
            '<html lang="en"><head><title>Sample</title></head><body><main><h1>Sample</h1>'
            '<button id="nameless"></button><p style="color:#aaa;background:#fff">faint</p>'
            '<img id="wordless" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
            # a table as Element Plus draws it: a line on a pseudo-element over its cells
            "<style>.el-table { position: relative } .el-table::before { content: '';"
            " position: absolute; left: 0; right: 0; bottom: 0; height: 1px;"
            " background: #ebeef5 }</style>"
            '<div class="el-table"><p style="color:#aaa;background:#fff">faint cell</p></div>'
            "</main></body></html>"
        )
        found = accessibility.violations(page)
        failing = {violation["id"] for violation in accessibility.failing(found)}
        assert {"button-name", "color-contrast", "image-alt"} <= failing
        message = accessibility.report("sample", found)
        assert "button-name (critical)" in message and "#nameless" in message
        assert "image-alt (critical)" in message and "#wordless" in message
        assert "faint</p>" in message
        assert "(in a table)" in message and "faint cell" in message
    finally:
        context.close()


SIZES = {"laptop": LAPTOP, "tablet": TABLET, "tablet-landscape": TABLET_LANDSCAPE}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_view_is_shot_and_passes_the_accessibility_check(
    browser: Any, hospital: Stack, language: str, size: str
) -> None:
    # each view as it stands once loaded: saved for a person to look at, and checked by
    # axe-core (no serious or critical violation); every view is shot before any verdict
    found: dict[str, list[dict[str, Any]]] = {}

    def look(name: str) -> None:
        shoot(page, name)
        found[name] = accessibility.violations(page)

    context = browser.new_context(
        viewport=SIZES[size],
        locale="zh-CN" if language == "zh" else "en-GB",
    )
    try:
        page = context.new_page()
        problems = _watch_console(page)
        views = {
            "overview": (f"/?hospital={HOSPITAL}", "count-red"),
            "department": (f"/hospitals/{HOSPITAL}/departments/CARDIO", "budget-execution"),
            "case": (f"/hospitals/{HOSPITAL}/cases/C-1002", "case-summary"),
        }
        for view, (path, marker) in views.items():
            page.goto(f"{hospital.url}{path}")
            if marker:
                page.get_by_test_id(marker).wait_for()
            page.wait_for_timeout(1500)  # the page's other calls (the live feed never ends)
            look(f"{view}-{language}-{size}")
        # the set-targets dialog over the department page
        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/CARDIO")
        page.get_by_test_id("set-targets").click()
        page.get_by_role("dialog").get_by_test_id("save-targets").wait_for()
        page.wait_for_timeout(500)  # the dialog's opening transition
        look(f"set-targets-{language}-{size}")
        # the sign-in page as a production service shows it (the session says sign-in is needed)
        page.route(
            "**/v1/session",
            lambda route: route.fulfill(
                json={
                    "signed_in": False,
                    "sign_in_required": True,
                    "mode": "production",
                    "identity": None,
                    "csrf_token": None,
                    "expires_at": None,
                    "timezone": "Asia/Shanghai",
                }
            ),
        )
        page.goto(f"{hospital.url}/login")
        page.locator("#login-name").wait_for()
        look(f"login-{language}-{size}")
        assert problems == []
        failures = {name: items for name, items in found.items() if accessibility.failing(items)}
        assert not failures, "\n\n".join(
            accessibility.report(name, items) for name, items in failures.items()
        )
    finally:
        context.close()


def test_a_resolution_goes_to_review_and_the_office_approves_it(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    page, problems = browser_page
    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/RESP")
    alerts_card = page.locator(".el-card", has=page.get_by_role("heading", name="本科室预警"))
    # its cost alerts only (not the rules' findings on the same cases)
    alerts_card.get_by_test_id("kind-filter").get_by_text("费用", exact=True).click()
    expect(alerts_card.locator(".el-table__row", has_text="规则预警")).to_have_count(0)
    row = alerts_card.locator(".el-table__row", has_text="C-2002").first
    row.get_by_role("button", name="处理").click()
    dialog = page.get_by_role("dialog")
    dialog.locator(".el-select__wrapper").click()
    page.get_by_role("option", name="新技术新项目").click()
    dialog.get_by_label("备注").fill("ECMO support, a new technique approved this year")
    # checked once the chosen reason's list has faded out (it lies over the form meanwhile)
    expect(page.get_by_role("option", name="新技术新项目")).to_be_hidden()
    found = accessibility.violations(page)
    assert not accessibility.failing(found), accessibility.report("resolve dialog", found)
    dialog.get_by_role("button", name="提交").click()
    page.get_by_text("操作已完成").first.wait_for()

    page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
    queue = page.locator(".el-table__row", has_text="C-2002").first
    queue.get_by_role("button", name="通过").click()
    page.get_by_text("操作已完成").first.wait_for()
    alerts = httpx.get(
        f"{hospital.url}/v1/alerts", params={"hospital_id": HOSPITAL, "case_id": "C-2002"}
    ).json()["items"]
    assert "resolved" in {alert["status"] for alert in alerts}
    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/cases/C-2002")
    timeline = page.get_by_test_id("timeline")
    timeline.get_by_text("审核通过").wait_for()
    assert "新技术新项目" in timeline.inner_text()
    assert problems == []


def test_a_department_alert_arrives_live_and_leads_to_the_department(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    page, problems = browser_page
    page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
    page.get_by_text("实时连接正常").wait_for(timeout=15_000)
    # an orthopaedic case discharged now, then a cost per case target it is far over
    now = datetime.now(ZONE)
    stay = a_stay("C-3001", "FM15", "ORTHO", "0.60")
    hospital.post(
        [
            *stay,
            {
                "event_id": "C-3001-dis",
                "type": "discharged",
                "hospital_id": HOSPITAL,
                "case_id": "C-3001",
                "occurred_at": now.isoformat(timespec="seconds"),
                "discharged_at": now.isoformat(timespec="seconds"),
            },
        ]
    )
    hospital.wait_for(
        lambda: (hospital.case(HOSPITAL, "C-3001") or {}).get("status") == "discharged"
    )
    answer = httpx.put(
        f"{hospital.url}/v1/hospitals/{HOSPITAL}/targets/ORTHO/{now:%Y-%m}",
        json={"cost_per_case": "1000.00"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text

    live = page.get_by_test_id("live-alerts")
    sentence = live.get_by_text(re.compile(r"ORTHO .*次均费用为目标的"))
    sentence.first.wait_for(timeout=15_000)
    shoot(page, "overview-department-alert")
    sentence.first.click()
    page.wait_for_url(re.compile(r"/hospitals/H001/departments/ORTHO"), timeout=15_000)
    assert problems == []


# Recorded before the page's own scripts run: every Notification the page creates (then made
# as usual) and every tone it starts (the oscillators of its WebAudio context).
RECORD_CUES = """
window.__notifications = [];
window.__tones = [];
if (window.Notification) {
  const Browser = window.Notification;
  window.Notification = class extends Browser {
    constructor(title, options) {
      window.__notifications.push({ title, body: (options && options.body) || "" });
      super(title, options);
    }
  };
}
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__tones.push(this.frequency.value);
  return start.apply(this, args);
};
"""


def _an_open_case(stack: Stack, case: str) -> None:
    """A NEURO case at 60% of its standard, no alert yet."""
    stack.post(a_stay(case, "ES33", "NEURO", "0.60"))
    stack.wait_for(lambda: (stack.case(HOSPITAL, case) or {}).get("level") == "none", 60)


def _cross_red(stack: Stack, case: str) -> None:
    stack.post([charge(case, "over", share("ES33", "0.50"), department="NEURO", days_ago=0.05)])


def _cue_page(browser: Any, permissions: list[str] | None) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=LAPTOP, locale="zh-CN")
    if permissions is not None:
        context.grant_permissions(permissions)
    context.add_init_script(RECORD_CUES)
    page = context.new_page()
    return context, page, _watch_console(page)


def test_a_red_alert_is_highlighted_sounded_and_notified(browser: Any, hospital: Stack) -> None:
    _an_open_case(hospital, "C-4001")
    context, page, problems = _cue_page(browser, ["notifications"])
    try:
        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        page.get_by_text("实时连接正常").wait_for(timeout=15_000)
        sound = page.get_by_role("button", name="提示音")
        notifications = page.get_by_role("button", name="桌面通知")
        expect(sound).to_have_attribute("aria-pressed", "false")
        expect(notifications).to_have_attribute("aria-pressed", "false")
        sound.click()
        notifications.click()
        expect(sound).to_have_attribute("aria-pressed", "true")
        expect(notifications).to_have_attribute("aria-pressed", "true")
        assert page.get_by_test_id("notify-state").inner_text().strip() == ""

        _cross_red(hospital, "C-4001")
        item = page.get_by_test_id("live-alerts").locator("li", has_text="C-4001").first
        item.wait_for(timeout=15_000)
        # the visible cue: the new alert is marked and drawn apart from the rest of the list
        expect(item).to_have_class(re.compile(r"\bfresh\b"))
        expect(item).to_have_attribute("data-fresh", "true")
        assert "红色预警" in item.inner_text()
        plain = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert item.evaluate("li => getComputedStyle(li).backgroundColor") != plain
        # the notification names the case and its department, the tone is the red one
        page.wait_for_function("window.__notifications.length > 0", timeout=10_000)
        created = page.evaluate("window.__notifications")
        assert any(
            "C-4001" in note["body"] and "NEURO" in note["body"] and "红色预警" in note["body"]
            for note in created
        ), created
        assert all(note["title"] == "实时预警" for note in created)
        tones = page.evaluate("window.__tones")
        # two beeps per escalation, as many as notifications; the red one's are the higher
        assert len(tones) == 2 * len(created) and tones.count(880) >= 2, tones
        shoot(page, "overview-live-cue-zh-laptop")
        found = accessibility.violations(page)
        assert not accessibility.failing(found), accessibility.report("live cue", found)

        # turned off again: the next crossing is shown, but neither sounded nor notified
        sound.click()
        notifications.click()
        expect(notifications).to_have_attribute("aria-pressed", "false")
        before = (len(page.evaluate("window.__notifications")), len(tones))
        _an_open_case(hospital, "C-4003")
        _cross_red(hospital, "C-4003")
        page.get_by_test_id("live-alerts").locator("li", has_text="C-4003").first.wait_for(
            timeout=15_000
        )
        page.wait_for_timeout(500)
        after = (len(page.evaluate("window.__notifications")), len(page.evaluate("window.__tones")))
        assert after == before
        assert problems == []
    finally:
        context.close()


def test_notifications_the_browser_refuses_are_said_to_be_blocked(
    browser: Any, hospital: Stack
) -> None:
    _an_open_case(hospital, "C-4002")
    # not granted: the browser refuses when the page asks
    context, page, problems = _cue_page(browser, None)
    try:
        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        page.get_by_text("实时连接正常").wait_for(timeout=15_000)
        state = page.get_by_test_id("notify-state")
        assert state.inner_text().strip() == ""
        page.get_by_role("button", name="提示音").click()
        notifications = page.get_by_role("button", name="桌面通知")
        notifications.click()
        expect(state).to_have_text(re.compile("浏览器已阻止本页的桌面通知"))
        expect(notifications).to_be_disabled()
        expect(notifications).to_have_attribute("aria-pressed", "false")

        _cross_red(hospital, "C-4002")
        item = page.get_by_test_id("live-alerts").locator("li", has_text="C-4002").first
        item.wait_for(timeout=15_000)
        expect(item).to_have_class(re.compile(r"\bfresh\b"))
        page.wait_for_function("window.__tones.length > 0", timeout=10_000)
        assert page.evaluate("window.__notifications") == []
        shoot(page, "overview-notifications-blocked-zh-laptop")
        found = accessibility.violations(page)
        assert not accessibility.failing(found), accessibility.report("blocked", found)
        assert problems == []
    finally:
        context.close()

    # blocked before the page opens (the site's settings): said at once, in English too
    context = browser.new_context(viewport=LAPTOP, locale="en-GB")
    context.grant_permissions([])
    try:
        page = context.new_page()
        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        expect(page.get_by_test_id("notify-state")).to_have_text(
            re.compile("The browser blocks notifications from this page")
        )
        expect(page.get_by_role("button", name="Desktop notifications")).to_be_disabled()
    finally:
        context.close()


def test_the_office_sets_a_departments_target_on_the_page_and_the_card_shows_it(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    page, problems = browser_page
    month = datetime.now(ZONE).strftime("%Y-%m")
    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/CARDIO")
    card = page.get_by_test_id("targets-card")
    expect(card.get_by_test_id("targets-thisMonth")).to_contain_text("未设置目标")
    card.get_by_test_id("set-targets").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"本月 ({month})")
    dialog.get_by_label("病例数（例）").fill("40")
    dialog.get_by_label("次均费用（元）").fill("18000.5")
    dialog.get_by_label("总费用（元）").fill("720000.00")
    dialog.get_by_test_id("save-targets").click()
    expect(dialog).to_be_hidden()

    this_month = card.get_by_test_id("targets-thisMonth")
    expect(this_month.get_by_test_id("target-source")).to_have_text("目标：本月目标")
    total = this_month.get_by_role("row").filter(has_text="总费用")
    expect(total).to_contain_text("720,000.00")
    expect(this_month.get_by_role("row").filter(has_text="次均费用")).to_contain_text("18,000.50")
    expect(this_month.get_by_role("row").filter(has_text="病例数")).to_contain_text("40")
    # nothing discharged in CARDIO yet: no cost so far, and the cases fall behind
    expect(this_month.locator("[data-pace=behind]")).to_have_text("落后")
    stored = httpx.get(
        f"{hospital.url}/v1/hospitals/{HOSPITAL}/targets", params={"department": "CARDIO"}
    ).json()["items"]
    assert [(item["period"], item["cases"], item["total_cost"]) for item in stored] == [
        (month, 40, "720000.00")
    ]
    shoot(page, "department-target-set-zh-laptop")

    # removed again, from the same dialog
    card.get_by_test_id("set-targets").click()
    dialog.get_by_test_id("remove-targets").click()
    expect(dialog).to_be_hidden()
    expect(this_month).to_contain_text("未设置目标")
    assert problems == []


def _lab_order(case: str, n: str, quantity: int, *, department: str) -> dict[str, Any]:
    """One order of `quantity` blood cultures, charged now."""
    event = charge(
        case,
        n,
        Decimal("45.00") * quantity,
        department=department,
        days_ago=0.02,
        item=("L2205", "Blood culture", "lab"),
    )
    event["quantity"] = str(quantity)
    event["unit_price"] = "45.00"
    return event


def _today_start() -> str:
    return datetime.now(ZONE).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()


def _open_findings(stack: Stack, rule: str) -> int:
    found = stack.all_alerts(hospital_id=HOSPITAL, kind="rule", since=_today_start())
    still_open = {"open", "acknowledged", "returned"}
    return sum(1 for item in found if item["rule_id"] == rule and item["status"] in still_open)


def test_a_rule_alert_arrives_live_and_is_shown_on_its_case_in_both_languages(
    browser: Any, hospital: Stack
) -> None:
    # a RESP case well below its standard, then an order of 10 blood cultures: the shipped
    # rule large-order bounds a lab order at 5
    hospital.post(a_stay("C-5001", "ES33", "RESP", "0.30"))
    hospital.wait_for(lambda: (hospital.case(HOSPITAL, "C-5001") or {}).get("level") == "none", 60)
    context = browser.new_context(viewport=LAPTOP, locale="zh-CN")
    try:
        page = context.new_page()
        problems = _watch_console(page)
        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        page.get_by_text("实时连接正常").wait_for(timeout=15_000)
        page.get_by_test_id("rules-today").wait_for()
        hospital.post([_lab_order("C-5001", "cultures", 10, department="RESP")])

        live = page.get_by_test_id("live-alerts")
        line = live.locator("li", has_text="单笔医嘱超限").filter(has_text="C-5001").first
        line.wait_for(timeout=15_000)
        finding = next(
            item
            for item in hospital.all_alerts(hospital_id=HOSPITAL, case_id="C-5001", kind="rule")
            if item["rule_id"] == "large-order"
        )
        assert finding["level"] == "yellow" and finding["rule_name"]["zh"] == "单笔医嘱超限"
        text = line.inner_text()
        assert finding["text_zh"] in text and "规则预警" in text and "黄色预警" in text
        # the card of what the rules found today counts it among the open findings
        expect(page.get_by_test_id("rule-open-large-order")).to_have_text(
            str(_open_findings(hospital, "large-order")), timeout=15_000
        )
        # the kind filter: rule alerts only, then cost alerts only
        page.get_by_test_id("kind-filter").get_by_text("规则", exact=True).click()
        expect(live.locator("li").first).to_contain_text("规则预警")
        assert all("规则预警" in item for item in live.locator("li").all_inner_texts())
        earlier = page.get_by_test_id("earlier-alerts")
        expect(earlier.locator("li").first).to_contain_text("规则预警")
        assert all("规则预警" in item for item in earlier.locator("li").all_inner_texts())
        shoot(page, "overview-rule-alerts-zh-laptop")
        found = accessibility.violations(page)
        assert not accessibility.failing(found), accessibility.report("rule feed zh", found)
        page.get_by_test_id("kind-filter").get_by_text("费用", exact=True).click()
        expect(earlier.locator("li").first).not_to_contain_text("规则预警")
        assert not any("规则预警" in item for item in live.locator("li").all_inner_texts())
        page.get_by_test_id("kind-filter").get_by_text("规则", exact=True).click()

        # the line opens its case, whose rule findings list it with the others
        live.locator("li", has_text="单笔医嘱超限").filter(has_text="C-5001").first.get_by_test_id(
            "rule-alert"
        ).click()
        page.wait_for_url(f"**/hospitals/{HOSPITAL}/cases/C-5001")
        section = page.get_by_test_id("rule-findings")
        section.get_by_role("heading", name="规则发现").wait_for()
        row = section.locator(".el-table__row", has_text="单笔医嘱超限")
        expect(row).to_contain_text(finding["text_zh"])
        expect(row).to_contain_text("黄色预警")
        every = hospital.all_alerts(hospital_id=HOSPITAL, case_id="C-5001", kind="rule")
        assert "large-order" in {item["rule_id"] for item in every}
        expect(section.locator(".el-table__row")).to_have_count(len(every))
        shoot(page, "case-rule-findings-zh-laptop")
        found = accessibility.violations(page)
        assert not accessibility.failing(found), accessibility.report("rule findings zh", found)

        # the department lists the case's rule alerts, acknowledged like any other
        page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/departments/RESP")
        alerts_card = page.locator(".el-card", has=page.get_by_role("heading", name="本科室预警"))
        alerts_card.get_by_test_id("kind-filter").get_by_text("规则", exact=True).click()
        row = alerts_card.locator(".el-table__row", has_text="单笔医嘱超限").filter(
            has_text="C-5001"
        )
        expect(row.get_by_test_id("rule-what")).to_contain_text(finding["text_zh"])
        shoot(page, "department-rule-alerts-zh-laptop")
        found = accessibility.violations(page)
        assert not accessibility.failing(found), accessibility.report("department rules", found)
        row.get_by_role("button", name="确认").click()
        page.get_by_text("操作已完成").first.wait_for()
        hospital.wait_for(
            lambda: (
                httpx.get(f"{hospital.url}/v1/alerts/{finding['alert_id']}").json()["status"]
                == "acknowledged"
            ),
            15,
        )
        assert problems == []
    finally:
        context.close()

    context = browser.new_context(viewport=LAPTOP, locale="en-GB")
    try:
        page = context.new_page()
        problems = _watch_console(page)
        page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
        page.get_by_test_id("kind-filter").get_by_text("Rule", exact=True).click()
        earlier = page.get_by_test_id("earlier-alerts")
        line = earlier.locator("li", has_text="Unusually large order").filter(has_text="C-5001")
        expect(line).to_contain_text(finding["text_en"])
        expect(line).to_contain_text("Rule alert")
        expect(page.get_by_test_id("rules-today")).to_contain_text("Unusually large order")
        shoot(page, "overview-rule-alerts-en-laptop")
        found = accessibility.violations(page)
        assert not accessibility.failing(found), accessibility.report("rule feed en", found)

        line.get_by_test_id("rule-alert").click()
        page.wait_for_url(f"**/hospitals/{HOSPITAL}/cases/C-5001")
        section = page.get_by_test_id("rule-findings")
        section.get_by_role("heading", name="Rule findings").wait_for()
        row = section.locator(".el-table__row", has_text="Unusually large order")
        expect(row).to_contain_text(finding["text_en"])
        expect(row).to_contain_text("Yellow alert")
        shoot(page, "case-rule-findings-en-laptop")
        found = accessibility.violations(page)
        assert not accessibility.failing(found), accessibility.report("rule findings en", found)
        assert problems == []
    finally:
        context.close()


def test_the_case_reads_its_rule_findings_from_the_explanation_when_it_carries_them(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    # a service whose case explanation carries `rule_findings`: the section lists those and
    # asks no alert list for them
    page, problems = browser_page
    given = {
        "alert_id": str(uuid.uuid4()),
        "rule_id": "stay-over-average",
        "rule_version": 1,
        "rule_name": {"zh": "住院日超出平均", "en": "Stay beyond the average"},
        "level": "blue",
        "text_zh": "已住院 12 天，超过 ES31 的平均住院日 8 天",
        "text_en": "In hospital 12 days, beyond the average stay of 8 days for ES31",
        "raised_at": datetime.now(ZONE).isoformat(timespec="seconds"),
    }

    def with_findings(route: Any) -> None:
        body = route.fetch().json()
        body["explanation"] = {**(body.get("explanation") or {}), "rule_findings": [given]}
        route.fulfill(json=body)

    asked: list[str] = []
    page.on(
        "request",
        lambda request: asked.append(request.url) if "kind=rule" in request.url else None,
    )
    page.route(f"**/v1/hospitals/{HOSPITAL}/cases/C-2002", with_findings)
    page.goto(f"{hospital.url}/hospitals/{HOSPITAL}/cases/C-2002")
    section = page.get_by_test_id("rule-findings")
    row = section.locator(".el-table__row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("住院日超出平均")
    expect(row).to_contain_text(given["text_zh"])
    expect(row).to_contain_text("蓝色预警")
    assert asked == []
    assert problems == []


def test_a_department_rule_alert_reads_as_a_sentence_and_opens_the_department(
    browser_page: tuple[Any, list[str]], hospital: Stack
) -> None:
    # thirty dermatology cases discharged now, each well below 0.4 of its standard: the
    # shipped department rule low-ratio-share (above 20% of at least 30 cases) finds it
    page, problems = browser_page
    page.goto(f"{hospital.url}/?hospital={HOSPITAL}")
    page.get_by_text("实时连接正常").wait_for(timeout=15_000)
    page.get_by_test_id("rules-today").wait_for()
    now = datetime.now(ZONE).isoformat(timespec="seconds")
    cases = [f"C-60{n:02d}" for n in range(30)]
    hospital.post(
        [
            event
            for case in cases
            for event in [
                *a_stay(case, "ES33", "DERM", "0.30"),
                {
                    "event_id": f"{case}-dis",
                    "type": "discharged",
                    "hospital_id": HOSPITAL,
                    "case_id": case,
                    "occurred_at": now,
                    "discharged_at": now,
                },
            ]
        ]
    )
    live = page.get_by_test_id("live-alerts")
    line = live.locator("li", has_text="低倍率病例占比过高").first
    line.wait_for(timeout=30_000)
    (finding,) = [
        item
        for item in hospital.all_alerts(hospital_id=HOSPITAL, kind="rule", department="DERM")
        if item["rule_id"] == "low-ratio-share"
    ]
    assert finding["case_id"] == "" and finding["level"] == "yellow"
    expect(line).to_contain_text(finding["text_zh"])
    expect(line).to_contain_text("规则预警")
    # no case: the line names the department and opens it
    expect(line.get_by_test_id("rule-alert")).to_have_text("科室 DERM")
    expect(page.get_by_test_id("rule-open-low-ratio-share")).to_have_text(
        str(_open_findings(hospital, "low-ratio-share")), timeout=15_000
    )
    shoot(page, "overview-department-rule-alert-zh-laptop")
    line.get_by_test_id("rule-alert").click()
    page.wait_for_url(f"**/hospitals/{HOSPITAL}/departments/DERM**")

    # the department's alerts list it without a case's figures, acknowledged like any other
    alerts_card = page.locator(".el-card", has=page.get_by_role("heading", name="本科室预警"))
    row = alerts_card.locator(".el-table__row", has_text="低倍率病例占比过高")
    expect(row.get_by_test_id("rule-what")).to_contain_text(finding["text_zh"])
    expect(row.get_by_test_id("caseless-alert")).to_have_text("科室 DERM")
    assert "%" not in row.locator("td").nth(2).inner_text()  # no ratio of a case
    shoot(page, "department-rule-alert-zh-laptop")
    found = accessibility.violations(page)
    assert not accessibility.failing(found), accessibility.report("department rule", found)
    row.get_by_role("button", name="确认").click()
    page.get_by_text("操作已完成").first.wait_for()
    hospital.wait_for(
        lambda: (
            httpx.get(f"{hospital.url}/v1/alerts/{finding['alert_id']}").json()["status"]
            == "acknowledged"
        ),
        15,
    )
    assert problems == []
