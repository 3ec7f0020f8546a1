"""Work-chat robot messages carry what came from events as text, never as markdown."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerting.alerts.schemas import AlertOut, Contributor, RuleName
from services.alerting.webhooks import formats

PHISHING = "[请点此登录医保结算系统](https://phish.example/login) <@all>"
HOSTILE = [
    PHISHING,
    "![x](https://tracker.example/p.png)",
    "**加粗** _斜体_ `code` ~~删~~",
    '<font color="warning">紧急</font>',
    "&lt;@all&gt;",
    "### 标题\n> 引用\n- 列表",
    "访问 www.phish.example 或 phish.example/login",
    "a\u2028b\u2029c",
    "|表|格|",
    "\\[转义\\]",
]
# markdown the robots render as something other than text
MARKUP = re.compile(r"[\[\]()<>`]|\*\*|__|~~|&\w+;|@all|https?://|www\.|\.example")


def _alert(
    item_name: str, *, hospital_id: str = "H001", case_id: str = "C1", dept: str = "CARD"
) -> AlertOut:
    now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    return AlertOut(
        alert_id="a1",
        hospital_id=hospital_id,
        case_id=case_id,
        department=dept,
        drg_code="FM15",
        level="red",
        previous_level="yellow",
        transition="escalated",
        total_cost="41350.00",
        standard_cost="40400.83",
        ratio="1.0235",
        event_id="e1",
        occurred_at=now,
        raised_at=now,
        top_contributors=[
            Contributor(
                item_code="X1",
                item_name=item_name,
                category="consumable",
                quantity="1",
                amount="37000.00",
            )
        ],
    )


def _text(body: str, message_format: formats.Format) -> str:
    markdown: dict[str, Any] = orjson.loads(body)["markdown"]
    return str(markdown["content"] if message_format == "wecom" else markdown["text"])


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_an_item_name_never_becomes_markup(message_format: formats.Format, hostile: str) -> None:
    text = _text(formats.alert_body(_alert(hostile), message_format), message_format)
    [item_line] = [line for line in text.splitlines() if line.startswith("- ")]
    shown = item_line[2:]
    assert not MARKUP.search(shown), shown
    assert "\n" not in shown
    # people still read it: Chinese text and letters come through
    for word in re.findall(r"[\u4e00-\u9fff]+", hostile):
        assert word in shown


def test_the_phishing_item_reads_as_text() -> None:
    text = _text(formats.alert_body(_alert(PHISHING), "wecom"), "wecom")
    assert "［请点此登录医保结算系统］（https：//phish．example/login） ＜＠all＞" in text
    assert "https://" not in text and "<@" not in text and "](" not in text


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
def test_ids_and_departments_are_text_too(message_format: formats.Format) -> None:
    alert = _alert("ok", hospital_id="H[1](x)", case_id="<@all>", dept="**心内**")
    for body in (
        formats.alert_body(alert, message_format),
        formats.digest_body([alert], alert.raised_at, alert.raised_at, message_format),
    ):
        text = _text(body, message_format)
        assert "<@all>" not in text and "](x)" not in text and "****" not in text
        assert "＜＠all＞" in text and "＊＊心内＊＊" in text


def test_the_standard_format_keeps_the_alert_as_it_is() -> None:
    body = orjson.loads(formats.alert_body(_alert(PHISHING), "standard"))
    assert body["data"]["top_contributors"][0]["item_name"] == PHISHING


@given(st.text(max_size=80))
def test_nothing_taken_from_events_can_open_markup(value: str) -> None:
    shown = formats.inert(value)
    assert not re.search(r"[\[\]()<>`*_#!|~\\@&{}\n\r\u2028\u2029]", shown), shown
    assert "://" not in shown and not re.search(r"[A-Za-z0-9]\.[A-Za-z]", shown)
    assert not re.search(r"(?i)www\.", shown)


def _forecast(item_name: str = "冠脉支架", dept: str = "CARD") -> AlertOut:
    return _alert(item_name, dept=dept).model_copy(
        update={
            "kind": "forecast",
            "level": "red",
            "previous_level": "none",
            "transition": "projected",
            "total_cost": "12000.00",
            "ratio": "0.2970",
            "projected_total": "45000.00",
            "projected_ratio": "1.1139",
        }
    )


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
def test_a_forecast_alert_reads_as_a_warning_ahead_of_time(
    message_format: formats.Format,
) -> None:
    body = orjson.loads(formats.alert_body(_forecast(), message_format))
    text = _text(formats.alert_body(_forecast(), message_format), message_format)
    assert "费用预测预警" in text and "预计出院时" in text
    assert "**111.39%**" in text and "预计总费用 45000.00" in text
    assert "目前：费用比 29.70%（总费用 12000.00 / 标准 40400.83），等级 无" in text
    assert "升级" not in text  # not a level change
    if message_format == "dingtalk":
        assert body["markdown"]["title"] == "🔴 DRG 费用预测预警：预计出院时超标准"


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_forecast_alert_keeps_event_text_inert(
    message_format: formats.Format, hostile: str
) -> None:
    text = _text(
        formats.alert_body(_forecast(hostile, dept=hostile), message_format), message_format
    )
    [item_line] = [line for line in text.splitlines() if line.startswith("- ")]
    assert not MARKUP.search(item_line[2:]), item_line
    [department_line] = [line for line in text.splitlines() if line.startswith("> 科室")]
    assert not MARKUP.search(department_line.split("　")[0][len("> 科室：") :])


@pytest.mark.parametrize("alert", [_alert("支架"), _forecast("支架")], ids=["level", "forecast"])
def test_a_case_alert_lists_its_first_three_cost_items_after_a_blank_line(
    alert: AlertOut,
) -> None:
    items = [
        Contributor(
            item_code=f"X{n}", item_name=f"项目{n}", category="drug", quantity="1", amount=amount
        )
        for n, amount in enumerate(["900.00", "500.00", "300.00", "100.00"], start=1)
    ]
    text = _text(
        formats.alert_body(alert.model_copy(update={"top_contributors": items}), "wecom"), "wecom"
    )
    assert text.splitlines()[-5:] == [
        "",
        "主要费用项目：",
        "- 项目1（X1）900.00",
        "- 项目2（X2）500.00",
        "- 项目3（X3）300.00",
    ]
    bare = _text(
        formats.alert_body(alert.model_copy(update={"top_contributors": []}), "wecom"), "wecom"
    )
    assert "主要费用项目" not in bare and not bare.endswith("\n")


def test_the_standard_format_names_a_forecast_alert_and_its_projection() -> None:
    body = orjson.loads(formats.alert_body(_forecast(), "standard"))
    assert body["type"] == "alert.forecast"
    assert body["data"]["kind"] == "forecast"
    assert body["data"]["projected_total"] == "45000.00"
    level = orjson.loads(formats.alert_body(_alert("x"), "standard"))
    assert level["type"] == "alert.escalated" and level["data"]["kind"] == "level"
    assert level["data"]["projected_total"] is None


def _target(measure: str = "total_cost", *, dept: str = "CARD") -> AlertOut:
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    per_case = measure == "cost_per_case"
    return AlertOut(
        alert_id="t1",
        kind="target",
        hospital_id="H001",
        case_id="",
        department=dept,
        drg_code=None,
        level="red",
        previous_level="none",
        transition="escalated",
        total_cost="23333.33" if per_case else "70000.00",
        standard_cost="20000.00" if per_case else "80000.00",
        ratio="1.1667" if per_case else "1.3125",
        event_id="",
        occurred_at=now,
        raised_at=now,
        top_contributors=[],
        projected_total=None if per_case else "105000.00",
        projected_ratio=None if per_case else "1.3125",
        target_period="2026-11",
        target_measure="cost_per_case" if per_case else "total_cost",  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
def test_a_department_alert_names_the_target_and_the_projection(
    message_format: formats.Format,
) -> None:
    text = _text(formats.alert_body(_target(), message_format), message_format)
    assert "科室目标预警 红色（升级）" in text
    assert "H001 / CARD" in text and "目标期间：2026-11" in text and "指标：总费用" in text
    assert "预计期末总费用 **105000.00**，为目标 80000.00 的 **131.25%**（已发生 70000.00）" in text
    per_case = _text(formats.alert_body(_target("cost_per_case"), message_format), message_format)
    assert "指标：次均费用" in per_case
    assert "次均费用 **23333.33**，为目标 20000.00 的 **116.67%**" in per_case


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_department_alert_keeps_the_department_inert(
    message_format: formats.Format, hostile: str
) -> None:
    text = _text(formats.alert_body(_target(dept=hostile), message_format), message_format)
    [department_line] = [line for line in text.splitlines() if line.startswith("> 科室")]
    # > 科室：**H001 / <the department>**　目标期间：...
    assert not MARKUP.search(department_line.split("**")[1]), department_line


def test_the_standard_format_and_the_digest_name_a_department_alert() -> None:
    body = orjson.loads(formats.alert_body(_target(), "standard"))
    assert body["type"] == "alert.target"
    assert (body["data"]["target_period"], body["data"]["target_measure"]) == (
        "2026-11",
        "total_cost",
    )
    assert body["data"]["case_id"] == ""
    now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    digest = _text(formats.digest_body([_target()], now, now, "dingtalk"), "dingtalk")
    assert "- **H001 / CARD 2026-11 总费用** 无→红色 131.25%" in digest


def _department_rule(dept: str = "CARD", blue: bool = False) -> AlertOut:
    """A department rule's finding as the rule watch raises it: no case, its period."""
    now = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)
    return AlertOut(
        alert_id="r1",
        kind="rule",
        hospital_id="H001",
        case_id="",
        department=dept,
        drg_code=None,
        level="blue" if blue else "yellow",
        previous_level="none",
        transition="raised",
        total_cost="0",
        standard_cost="0",
        ratio="0",
        event_id="",
        occurred_at=now,
        raised_at=now,
        top_contributors=[],
        rule_id="cost-per-case-growth",
        rule_version=1,
        rule_name=RuleName(zh="科室例均费用增长过快", en="Department cost per case rising"),
        rule_period="2026-11",
        detail={"baseline": "same_period_last_year", "growth": "0.2000"},
        text_zh=f"{dept} 2026-11 例均费用 12000.00 元，较去年同期 10000.00 元上升 20%，超过 15%",
        text_en=f"{dept} cost per case in 2026-11 is 12000.00, up 20% on the same period last year",
    )


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
def test_a_department_rule_alert_names_the_rule_the_department_and_the_period(
    message_format: formats.Format,
) -> None:
    text = _text(formats.alert_body(_department_rule(), message_format), message_format)
    assert text.startswith("### 🟡 规则预警 · 科室例均费用增长过快\n")
    assert "> 科室：**H001 / CARD**　期间：2026-11" in text
    assert "**CARD 2026-11 例均费用 12000.00 元，较去年同期 10000.00 元上升 20%，超过 15%**" in text
    assert "> 级别：**黄色**　规则：cost-per-case-growth 第 1 版" in text
    assert "病例" not in text


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
def test_a_case_rule_alert_names_its_case(message_format: formats.Format) -> None:
    alert = _department_rule().model_copy(
        update={"case_id": "C1", "drg_code": "FM15", "rule_period": "stay"}
    )
    text = _text(formats.alert_body(alert, message_format), message_format)
    assert "> 病例：**H001 / C1**" in text and "DRG：FM15" in text


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_department_rule_alert_keeps_event_text_inert(
    message_format: formats.Format, hostile: str
) -> None:
    text = _text(formats.alert_body(_department_rule(hostile), message_format), message_format)
    [department_line] = [line for line in text.splitlines() if line.startswith("> 科室")]
    assert not MARKUP.search(department_line.split("**")[1]), department_line
    finding = next(line for line in text.splitlines() if "例均费用" in line and "规则" not in line)
    assert not MARKUP.search(finding.strip("*")), finding  # inside the bold's "**"


def test_the_standard_format_and_the_digest_name_a_rule_alert() -> None:
    body = orjson.loads(formats.alert_body(_department_rule(), "standard"))
    assert body["type"] == "alert.rule"
    assert (body["data"]["rule_id"], body["data"]["rule_period"]) == (
        "cost-per-case-growth",
        "2026-11",
    )
    assert body["data"]["case_id"] == ""
    blue = _department_rule(blue=True)
    digest = _text(formats.digest_body([blue], blue.raised_at, blue.raised_at, "wecom"), "wecom")
    assert "- **H001 / CARD 2026-11** 规则预警 · 科室例均费用增长过快 蓝色：CARD 2026-11" in digest


def _rule(
    *,
    case_id: str = "C1",
    dept: str = "CARD",
    item_name: str = "头颅CT",
    rule_name: str = "重复检查检验",
    level: str = "yellow",
) -> AlertOut:
    now = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    return AlertOut.model_validate(
        {
            "alert_id": "r1",
            "kind": "rule",
            "hospital_id": "H001",
            "case_id": case_id,
            "department": dept,
            "drg_code": "FM15" if case_id else None,
            "level": level,
            "previous_level": "red" if case_id else "none",
            "transition": "raised",
            "total_cost": "41350.00" if case_id else "0",
            "standard_cost": "40400.83" if case_id else "0",
            "ratio": "1.0235" if case_id else "0",
            "event_id": "e9" if case_id else "",
            "occurred_at": now,
            "raised_at": now,
            "top_contributors": [],
            "rule_id": "repeat-exam" if case_id else "cost-per-case-growth",
            "rule_version": 2,
            "rule_name": {"zh": rule_name, "en": "Repeated exam or lab"},
            "rule_period": "2026-11-22/CT01" if case_id else "2026-11",
            "detail": {"item_code": "CT01"},
            "text_zh": f"{item_name}（CT01）于 2026-11-22 再次收费，3 天内已于 2026-11-20 收费",
            "text_en": f"{item_name} (CT01) charged again on 2026-11-22, within 3 days of"
            " 2026-11-20",
        }
    )


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
def test_a_rule_alert_is_titled_by_its_rule_and_says_what_it_found(
    message_format: formats.Format,
) -> None:
    body = orjson.loads(formats.alert_body(_rule(), message_format))
    text = _text(formats.alert_body(_rule(), message_format), message_format)
    lines = text.splitlines()
    assert lines[0] == "### 🟡 规则预警 · 重复检查检验"
    assert "> 病例：**H001 / C1**" in lines
    assert "> 科室：CARD　DRG：FM15" in lines
    assert "> 级别：**黄色**　规则：repeat-exam 第 2 版" in lines
    assert "> 费用比：102.35%（总费用 41350.00 / 标准 40400.83）" in lines
    assert "**头颅CT（CT01）于 2026-11-22 再次收费，3 天内已于 2026-11-20 收费**" in lines
    # the level the case stands at is not the finding's: no level change is claimed
    assert "升级" not in text and "红色" not in text
    if message_format == "dingtalk":
        assert body["markdown"]["title"] == "🟡 规则预警 · 重复检查检验"


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
def test_a_department_rule_alert_names_the_department_and_no_case(
    message_format: formats.Format,
) -> None:
    text = _text(formats.alert_body(_rule(case_id="", level="red"), message_format), message_format)
    assert text.startswith("### 🔴 规则预警 · 重复检查检验\n")
    assert "> 科室：**H001 / CARD**　期间：2026-11\n" in text
    assert "病例" not in text and "费用比" not in text
    assert "> 级别：**红色**　规则：cost-per-case-growth 第 2 版" in text


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_rule_alert_keeps_what_came_from_events_and_rules_inert(
    message_format: formats.Format, hostile: str
) -> None:
    alert = _rule(item_name=hostile, dept=hostile, rule_name=hostile)
    for body in (
        formats.alert_body(alert, message_format),
        formats.digest_body([alert], alert.raised_at, alert.raised_at, message_format),
    ):
        text = _text(body, message_format)
        for line in text.splitlines():
            shown = line.removeprefix("### ").removeprefix("> ").removeprefix("- ")
            assert not MARKUP.search(shown.replace("**", "")), line


def test_the_standard_format_and_the_digest_carry_a_rule_alert() -> None:
    body = orjson.loads(formats.alert_body(_rule(), "standard"))
    assert body["type"] == "alert.rule"
    data = body["data"]
    assert (data["kind"], data["rule_id"], data["rule_version"]) == ("rule", "repeat-exam", 2)
    assert data["rule_name"] == {"zh": "重复检查检验", "en": "Repeated exam or lab"}
    assert data["text_en"].startswith("头颅CT (CT01) charged again on 2026-11-22")
    assert data["detail"] == {"item_code": "CT01"} and data["rule_period"] == "2026-11-22/CT01"
    now = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    blue = _rule(level="blue")
    digest = _text(
        formats.digest_body([blue, _rule(case_id="", level="blue")], now, now, "dingtalk"),
        "dingtalk",
    )
    assert (
        "- **H001 / C1** CARD 规则预警 · 重复检查检验 蓝色："
        "头颅CT（CT01）于 2026-11-22 再次收费，3 天内已于 2026-11-20 收费"
    ) in digest
    assert "- **H001 / CARD 2026-11** 规则预警 · 重复检查检验 蓝色：" in digest
