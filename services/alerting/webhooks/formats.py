"""Message bodies: the Standard Webhooks JSON, or a work-chat robot's markdown message.

WeCom (企业微信) and DingTalk (钉钉) group robots take `{"msgtype": "markdown", ...}`;
the text keeps to the markdown both render (headings, bold, quotes, lists).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson

from services.alerting.alerts.schemas import AlertOut

Format = Literal["standard", "wecom", "dingtalk"]
LEVEL_NAMES = {"none": "无", "blue": "蓝色", "yellow": "黄色", "red": "红色"}
LEVEL_MARKS = {"none": "⚪", "blue": "🔵", "yellow": "🟡", "red": "🔴"}
TRANSITION_NAMES = {"escalated": "升级", "de-escalated": "降级", "resolved": "解除"}
TOP_CONTRIBUTORS_SHOWN = 3
DIGEST_LINES_SHOWN = 30
# WeCom refuses markdown content over 4096 bytes
WECOM_CONTENT_BYTES = 4000


def percent(ratio: str) -> str:
    return f"{(Decimal(ratio) * 100).quantize(Decimal('0.01'))}%"


def _dumps(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def alert_body(alert: AlertOut, message_format: Format) -> str:
    """The exact text sent for one alert (stored once; every retry resends these bytes)."""
    if message_format == "standard":
        return _dumps(
            {
                "type": f"alert.{alert.transition}",
                "timestamp": alert.raised_at.isoformat(),
                "data": alert.model_dump(mode="json"),
            }
        )
    title = (
        f"{LEVEL_MARKS[alert.level]} DRG 费用预警 {LEVEL_NAMES[alert.level]}"
        f"（{TRANSITION_NAMES[alert.transition]}）"
    )
    lines = [
        f"### {title}",
        f"> 病例：**{alert.hospital_id} / {alert.case_id}**",
        f"> 科室：{alert.department or '-'}　DRG：{alert.drg_code or '-'}",
        f"> 等级：{LEVEL_NAMES[alert.previous_level]} → **{LEVEL_NAMES[alert.level]}**",
        f"> 费用比：**{percent(alert.ratio)}**"
        f"（总费用 {alert.total_cost} / 标准 {alert.standard_cost}）",
    ]
    if alert.top_contributors:
        lines.append("")
        lines.append("主要费用项目：")
        for contributor in alert.top_contributors[:TOP_CONTRIBUTORS_SHOWN]:
            lines.append(
                f"- {contributor.item_name}（{contributor.item_code}）{contributor.amount}"
            )
    return _robot_body(title, "\n".join(lines), message_format)


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
        lines.append(
            f"- **{alert.hospital_id} / {alert.case_id}** {alert.department or '-'}"
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
