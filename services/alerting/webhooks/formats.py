"""Message bodies: the Standard Webhooks JSON, or a work-chat robot's markdown message.

WeCom (企业微信) and DingTalk (钉钉) group robots take `{"msgtype": "markdown", ...}`;
the text keeps to the markdown both render (headings, bold, quotes, lists).

Everything in a robot message that came from events (ids, department, DRG, item names
and codes) goes through `inert`: an item named `[请登录](https://phish.example) <@all>`
must reach the group as text, not as a live link and a mention of everyone. Neither
robot documents a markdown escape, so the characters that mean something to them are
replaced by their full-width forms (read alike, and usual in Chinese text), line
breaks by spaces, and what a client would turn into a link (`://`, `www.`, a dot
between a name and a letter) is broken the same way.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson

from services.alerting.alerts.schemas import AlertOut

Format = Literal["standard", "wecom", "dingtalk"]
LEVEL_NAMES = {"none": "无", "blue": "蓝色", "yellow": "黄色", "red": "红色"}
LEVEL_MARKS = {"none": "⚪", "blue": "🔵", "yellow": "🟡", "red": "🔴"}
TRANSITION_NAMES = {
    "escalated": "升级",
    "de-escalated": "降级",
    "resolved": "解除",
    "projected": "预测",
    "raised": "触发",
}
TOP_CONTRIBUTORS_SHOWN = 3
DIGEST_LINES_SHOWN = 30
# WeCom refuses markdown content over 4096 bytes
WECOM_CONTENT_BYTES = 4000
# markdown (links, images, emphasis, code, headings, quotes, tables), HTML tags such as
# <font>, mentions such as <@userid> or @all, and entities that decode into them
_FULL_WIDTH = str.maketrans(
    {
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "<": "＜",
        ">": "＞",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "#": "＃",
        "!": "！",
        "|": "｜",
        "~": "～",
        "\\": "＼",
        "@": "＠",
        "&": "＆",
        "{": "｛",
        "}": "｝",
        "\n": " ",
        "\r": " ",
        "\t": " ",
        "\u2028": " ",
        "\u2029": " ",
    }
)
_LINK_LIKE = re.compile(r"://|(?<=[A-Za-z0-9])\.(?=[A-Za-z])|(?i:www)\.")


def inert(value: object) -> str:
    """Text taken from events, as plain text in a robot's markdown (see the docstring)."""
    text = str(value).translate(_FULL_WIDTH)
    return _LINK_LIKE.sub(lambda found: found.group(0).replace(":", "：").replace(".", "．"), text)


def percent(ratio: str) -> str:
    return f"{(Decimal(ratio) * 100).quantize(Decimal('0.01'))}%"


def _dumps(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def alert_body(alert: AlertOut, message_format: Format) -> str:
    """The exact text sent for one alert (stored once; every retry resends these bytes)."""
    if message_format == "standard":
        return _dumps(
            {
                "type": f"alert.{alert.kind}"
                if alert.kind in ("forecast", "target", "rule")
                else f"alert.{alert.transition}",
                "timestamp": alert.raised_at.isoformat(),
                "data": alert.model_dump(mode="json"),
            }
        )
    if alert.kind == "forecast":
        return _forecast_robot_body(alert, message_format)
    if alert.kind == "target":
        return _target_robot_body(alert, message_format)
    if alert.kind == "rule":
        return _rule_robot_body(alert, message_format)
    title = (
        f"{LEVEL_MARKS[alert.level]} DRG 费用预警 {LEVEL_NAMES[alert.level]}"
        f"（{TRANSITION_NAMES[alert.transition]}）"
    )
    lines = [
        f"### {title}",
        f"> 病例：**{inert(alert.hospital_id)} / {inert(alert.case_id)}**",
        f"> 科室：{inert(alert.department or '-')}　DRG：{inert(alert.drg_code or '-')}",
        f"> 等级：{LEVEL_NAMES[alert.previous_level]} → **{LEVEL_NAMES[alert.level]}**",
        f"> 费用比：**{percent(alert.ratio)}**"
        f"（总费用 {alert.total_cost} / 标准 {alert.standard_cost}）",
    ]
    lines.extend(_contributor_lines(alert))
    return _robot_body(title, "\n".join(lines), message_format)


def _contributor_lines(alert: AlertOut) -> list[str]:
    """The case's top cost items as the robot message lists them; none when it has none."""
    if not alert.top_contributors:
        return []
    return [
        "",
        "主要费用项目：",
        *(
            f"- {inert(contributor.item_name)}（{inert(contributor.item_code)}）"
            f"{inert(contributor.amount)}"
            for contributor in alert.top_contributors[:TOP_CONTRIBUTORS_SHOWN]
        ),
    ]


def _forecast_robot_body(alert: AlertOut, message_format: Format) -> str:
    """A forecast alert reads as a warning ahead of time: the cost is still below blue, the
    pace of the stay takes it over the standard by discharge."""
    title = f"{LEVEL_MARKS[alert.level]} DRG 费用预测预警：预计出院时超标准"
    lines = [
        f"### {title}",
        f"> 病例：**{inert(alert.hospital_id)} / {inert(alert.case_id)}**",
        f"> 科室：{inert(alert.department or '-')}　DRG：{inert(alert.drg_code or '-')}",
        f"> 目前：费用比 {percent(alert.ratio)}"
        f"（总费用 {alert.total_cost} / 标准 {alert.standard_cost}），"
        f"等级 {LEVEL_NAMES[alert.previous_level]}",
        f"> 预计出院时：费用比 **{percent(alert.projected_ratio or '0')}**"
        f"（预计总费用 {alert.projected_total or '-'}），达到{LEVEL_NAMES[alert.level]}",
        "",
        "按本病例目前每日费用及该 DRG 平均住院日推算，请及早评估诊疗方案。",
    ]
    lines.extend(_contributor_lines(alert))
    return _robot_body(title, "\n".join(lines), message_format)


MEASURE_NAMES = {"total_cost": "总费用", "cost_per_case": "次均费用"}


def _target_robot_body(alert: AlertOut, message_format: Format) -> str:
    """A department's pace against its target: total cost by its projection to the end of
    the period, cost per case by its value so far."""
    measure = MEASURE_NAMES.get(alert.target_measure or "", "-")
    period = inert(alert.target_period or "-")
    title = (
        f"{LEVEL_MARKS[alert.level]} 科室目标预警 {LEVEL_NAMES[alert.level]}"
        f"（{TRANSITION_NAMES[alert.transition]}）"
    )
    lines = [
        f"### {title}",
        f"> 科室：**{inert(alert.hospital_id)} / {inert(alert.department or '-')}**"
        f"　目标期间：{period}　指标：{measure}",
        f"> 等级：{LEVEL_NAMES[alert.previous_level]} → **{LEVEL_NAMES[alert.level]}**",
    ]
    if alert.target_measure == "total_cost":
        lines.append(
            f"> 预计期末总费用 **{alert.projected_total or '-'}**，为目标 {alert.standard_cost} 的"
            f" **{percent(alert.ratio)}**（已发生 {alert.total_cost}）"
        )
    else:
        lines.append(
            f"> 次均费用 **{alert.total_cost}**，为目标 {alert.standard_cost} 的"
            f" **{percent(alert.ratio)}**"
        )
    return _robot_body(title, "\n".join(lines), message_format)


def rule_title(alert: AlertOut) -> str:
    """The title: 规则预警 · {the rule's Chinese name} (its id where the name is missing)."""
    name = alert.rule_name.zh if alert.rule_name is not None else alert.rule_id or "-"
    return f"规则预警 · {inert(name)}"


def _rule_robot_body(alert: AlertOut, message_format: Format) -> str:
    """A monitoring rule's finding: the rule, the case (or, for a department rule, the
    department and the period it judged), the severity, and the rule's own sentence
    saying what it found."""
    title = f"{LEVEL_MARKS[alert.level]} {rule_title(alert)}"
    if alert.case_id:
        lines = [
            f"### {title}",
            f"> 病例：**{inert(alert.hospital_id)} / {inert(alert.case_id)}**",
            f"> 科室：{inert(alert.department or '-')}　DRG：{inert(alert.drg_code or '-')}",
        ]
    else:
        lines = [
            f"### {title}",
            f"> 科室：**{inert(alert.hospital_id)} / {inert(alert.department or '-')}**"
            f"　期间：{inert(alert.rule_period or '-')}"
            + (f"　DRG：{inert(alert.drg_code)}" if alert.drg_code else ""),
        ]
    lines.append(
        f"> 级别：**{LEVEL_NAMES[alert.level]}**"
        f"　规则：{inert(alert.rule_id or '-')} 第 {alert.rule_version or '-'} 版"
    )
    if alert.case_id and Decimal(alert.standard_cost) > 0:
        lines.append(
            f"> 费用比：{percent(alert.ratio)}"
            f"（总费用 {alert.total_cost} / 标准 {alert.standard_cost}）"
        )
    # the sentence names items, departments and DRGs taken from events: text, never markup
    lines.extend(["", f"**{inert(alert.text_zh or '-')}**"])
    return _robot_body(title, "\n".join(lines), message_format)


def _subject(alert: AlertOut) -> str:
    """Who an alert is about: a case, a department's target, or a department's period
    a monitoring rule judged."""
    if alert.kind == "rule" and not alert.case_id:
        return (
            f"{inert(alert.hospital_id)} / {inert(alert.department or '-')}"
            f" {inert(alert.rule_period or '')}"
        )
    if alert.kind == "target":
        measure = MEASURE_NAMES.get(alert.target_measure or "", "")
        return (
            f"{inert(alert.hospital_id)} / {inert(alert.department or '-')}"
            f" {inert(alert.target_period or '')} {measure}"
        )
    return f"{inert(alert.hospital_id)} / {inert(alert.case_id)}"


def digest_body(
    alerts: list[AlertOut], period_start: datetime, period_end: datetime, message_format: Format
) -> str:
    """One message summing up the blue alerts gathered over a period."""
    if message_format == "standard":
        return _dumps(
            {
                "type": "alert.digest",
                "timestamp": period_end.isoformat(),
                "data": {
                    "period_start": period_start.isoformat(),
                    "period_end": period_end.isoformat(),
                    "count": len(alerts),
                    "alerts": [alert.model_dump(mode="json") for alert in alerts],
                },
            }
        )
    title = f"🔵 DRG 蓝色预警汇总：{len(alerts)} 条"
    lines = [
        f"### {title}",
        f"> {period_start:%Y-%m-%d %H:%M} – {period_end:%H:%M} UTC",
        "",
    ]
    for alert in alerts[:DIGEST_LINES_SHOWN]:
        if alert.kind == "rule":
            lines.append(
                f"- **{_subject(alert)}**"
                f"{' ' + inert(alert.department or '-') if alert.case_id else ''}"
                f" {rule_title(alert)} {LEVEL_NAMES[alert.level]}：{inert(alert.text_zh or '-')}"
            )
            continue
        lines.append(
            f"- **{_subject(alert)}**"
            f"{'' if alert.kind == 'target' else ' ' + inert(alert.department or '-')}"
            f" {LEVEL_NAMES[alert.previous_level]}→{LEVEL_NAMES[alert.level]}"
            f" {percent(alert.ratio)}"
        )
    if len(alerts) > DIGEST_LINES_SHOWN:
        lines.append(f"- ……另有 {len(alerts) - DIGEST_LINES_SHOWN} 条")
    return _robot_body(title, "\n".join(lines), message_format)


def ping_body(subscription_id: str, sent_at: datetime, message_format: Format) -> str:
    """A message that only proves the endpoint receives and verifies what is sent."""
    if message_format == "standard":
        return _dumps(
            {
                "type": "webhook.test",
                "timestamp": sent_at.isoformat(),
                "data": {"subscription_id": subscription_id},
            }
        )
    title = "drgwatch 测试消息"
    text = f"### {title}\n> 订阅 {subscription_id} 已连通（{sent_at:%Y-%m-%d %H:%M:%S} UTC）"
    return _robot_body(title, text, message_format)


def _robot_body(title: str, text: str, message_format: Format) -> str:
    if message_format == "wecom":
        content = text.encode()[:WECOM_CONTENT_BYTES].decode(errors="ignore")
        return _dumps({"msgtype": "markdown", "markdown": {"content": content}})
    return _dumps({"msgtype": "markdown", "markdown": {"title": title, "text": text}})


def robot_refused(message_format: Format, response_body: bytes) -> str | None:
    """Robots answer 200 with a non-zero `errcode` when they refuse a message."""
    if message_format == "standard":
        return None
    try:
        answer = orjson.loads(response_body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
        return f"robot errcode {answer.get('errcode')}: {str(answer.get('errmsg', ''))[:200]}"
    return None
