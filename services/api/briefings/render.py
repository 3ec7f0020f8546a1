"""The weekly briefing as a spreadsheet (CSV) and as a printable page (HTML), in Chinese
or English. Everything taken from events is escaped by the template engine; the page
carries its own style, allowed by its hash in the page's Content Security Policy."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

from jinja2 import Environment, select_autoescape

from services.api.briefings.schemas import BriefingAlert, WeeklyBriefing
from services.casecost.explain import CATEGORY_ZH

Language = Literal["zh", "en"]
CENT = Decimal("0.01")

LABELS: dict[Language, dict[str, str]] = {
    "zh": {
        "title": "科室 DRG 运行周报",
        "hospital": "医院",
        "department": "科室",
        "all_departments": "全部科室",
        "week": "周次",
        "period": "统计区间",
        "generated": "生成时间",
        "indicators": "本周指标（出院病例）",
        "cases": "出院病例数",
        "cmi": "CMI",
        "total_weight": "总权重",
        "total_cost": "总费用",
        "total_standard": "支付标准合计",
        "budget_execution": "预算执行率",
        "surplus": "结余（负数为超支）",
        "cost_consumption_index": "费用消耗指数",
        "regional_cost_consumption_index": "费用消耗指数（区域例均费用）",
        "time_consumption_index": "时间消耗指数",
        "mean_los_days": "平均住院日",
        "drug_share": "药占比",
        "consumables_share": "耗占比",
        "high_ratio_cases": "高倍率病例",
        "low_ratio_cases": "低倍率病例",
        "cost_per_case": "例均费用",
        "cost_per_case_change": "例均费用环比",
        "drgs": "病组",
        "drg": "DRG",
        "red_cases": "本周红色预警病例及原因",
        "case": "病例",
        "reached_red": "进入红色",
        "ratio_at_red": "当时费用比",
        "causes": "主要费用项目",
        "now": "目前",
        "alert_status": "处理状态",
        "reason": "原因",
        "note": "说明",
        "alerts": "本周预警及处理",
        "level": "级别",
        "transition": "变化",
        "ratio": "费用比",
        "raised": "时间",
        "status": "状态",
        "acted_by": "处理人",
        "raised_by_level": "升级次数",
        "by_status": "按状态",
        "resolutions": "按原因",
        "none": "无",
        "print": "打印",
    },
    "en": {
        "title": "Weekly department DRG briefing",
        "hospital": "Hospital",
        "department": "Department",
        "all_departments": "All departments",
        "week": "Week",
        "period": "Period",
        "generated": "Generated",
        "indicators": "This week's indicators (discharged cases)",
        "cases": "Discharged cases",
        "cmi": "CMI",
        "total_weight": "Total weight",
        "total_cost": "Total cost",
        "total_standard": "Total of standards",
        "budget_execution": "Budget execution",
        "surplus": "Surplus (negative: overspend)",
        "cost_consumption_index": "Cost consumption index",
        "regional_cost_consumption_index": "Cost consumption index (regional means)",
        "time_consumption_index": "Time consumption index",
        "mean_los_days": "Mean length of stay",
        "drug_share": "Drug share",
        "consumables_share": "Consumables share",
        "high_ratio_cases": "High-ratio cases",
        "low_ratio_cases": "Low-ratio cases",
        "cost_per_case": "Cost per case",
        "cost_per_case_change": "Cost per case, change on the week before",
        "drgs": "DRG groups",
        "drg": "DRG",
        "red_cases": "Cases that turned red this week, and why",
        "case": "Case",
        "reached_red": "Turned red",
        "ratio_at_red": "Ratio then",
        "causes": "Largest items",
        "now": "Now",
        "alert_status": "Handling",
        "reason": "Reason",
        "note": "Note",
        "alerts": "This week's alerts and how they were handled",
        "level": "Level",
        "transition": "Change",
        "ratio": "Ratio",
        "raised": "When",
        "status": "Status",
        "acted_by": "By",
        "raised_by_level": "Escalations",
        "by_status": "By status",
        "resolutions": "By reason",
        "none": "None",
        "print": "Print",
    },
}

WORDS: dict[Language, dict[str, str]] = {
    "zh": {
        "none": "正常",
        "blue": "蓝色",
        "yellow": "黄色",
        "red": "红色",
        "unpriced": "未定价",
        "escalated": "升级",
        "de-escalated": "降级",
        "resolved": "解除",
        "projected": "预计出院超标",
        "open": "待处理",
        "acknowledged": "已确认",
        "under_review": "待医保办审核",
        "returned": "已退回",
        "discharged": "已出院",
        "new_technique": "新技术新项目",
        "public_health_emergency": "突发公共卫生事件",
        "price_change": "价格调整",
        "over_treatment": "过度诊疗",
        "management_gap": "管理不到位",
        "other": "其他",
        "approved": "通过",
        "rejected": "退回",
        "acknowledge": "确认",
        "resolve": "处理",
        "review": "审核",
        **CATEGORY_ZH,  # cost categories
        "target": "科室目标",
        "raised": "规则预警",
        "rule_alert": "规则预警",
        "department_of": "科室",
        "total_cost": "总费用",
        "cost_per_case": "次均费用",
    },
    "en": {
        "target": "department target",
        "raised": "rule alert",
        "rule_alert": "Rule alert",
        "department_of": "department",
        "total_cost": "total cost",
        "cost_per_case": "cost per case",
        "under_review": "under review",
        "de-escalated": "de-escalated",
        "projected": "projected over at discharge",
        "new_technique": "new technique",
        "public_health_emergency": "public health emergency",
        "price_change": "price change",
        "over_treatment": "over-treatment",
        "management_gap": "management gap",
    },
}
# "open" is both a case status and an alert status: a case reads 在院 in Chinese
CASE_OPEN: dict[Language, str] = {"zh": "在院", "en": "in hospital"}

INDICATOR_ROWS: tuple[tuple[str, str], ...] = (
    ("cases", "count"),
    ("cmi", "number"),
    ("total_weight", "number"),
    ("total_cost", "money"),
    ("total_standard", "money"),
    ("budget_execution", "percent"),
    ("surplus", "money"),
    ("cost_consumption_index", "number"),
    ("regional_cost_consumption_index", "number"),
    ("time_consumption_index", "number"),
    ("mean_los_days", "number"),
    ("drug_share", "percent"),
    ("consumables_share", "percent"),
    ("high_ratio_cases", "count"),
    ("low_ratio_cases", "count"),
    ("cost_per_case", "money"),
    ("cost_per_case_change", "percent"),
)


def language_of(asked: str | None, accept_language: str | None) -> Language:
    """`zh` or `en`: as asked, else the first of the two the browser lists, else Chinese."""
    if asked in ("zh", "en"):
        return "zh" if asked == "zh" else "en"
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "zh"


class Formats:
    """How numbers, days and words read in one language and zone."""

    def __init__(self, language: Language, zone: tzinfo) -> None:
        self.language = language
        self.zone = zone

    def money(self, value: str | None) -> str:
        if value is None:
            return "—"
        return f"{Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP):,}"

    def percent(self, value: str | None) -> str:
        if value is None:
            return "—"
        return f"{(Decimal(value) * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"

    def number(self, value: str | int | None) -> str:
        return "—" if value is None else str(value)

    def figure(self, value: Any, kind: str) -> str:
        if kind == "money":
            return self.money(value)
        if kind == "percent":
            return self.percent(value)
        return self.number(value)

    def moment(self, value: datetime | None) -> str:
        return "—" if value is None else value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def word(self, value: str | None) -> str:
        if value is None:
            return "—"
        return WORDS[self.language].get(value, value.replace("_", " "))

    def subject(self, alert: BriefingAlert) -> str:
        """The case an alert is about, the department target, or (a department rule's
        finding) the department and the period it judged."""
        if alert.kind == "rule" and not alert.case_id:
            period = alert.rule_period or ""
            return f"{self.word('department_of')} {alert.department or '—'} {period}".rstrip()
        if alert.kind != "target":
            return alert.case_id
        return f"{self.word('target')} {alert.target_period} {self.word(alert.target_measure)}"

    def change(self, alert: BriefingAlert) -> str:
        """What happened: the level's change, or a rule's finding in its own words
        ("规则预警 · {rule name}：{what it found}")."""
        if alert.kind != "rule":
            return self.word(alert.transition)
        name = alert.rule_name
        if self.language == "zh":
            title = name.zh if name is not None else alert.rule_id
            return f"{self.word('rule_alert')} · {title}：{alert.text_zh or '—'}"
        title = name.en if name is not None else alert.rule_id
        return f"{self.word('rule_alert')} · {title}: {alert.text_en or '—'}"

    def alert_ratio(self, alert: BriefingAlert) -> str:
        """The case's cost over its standard then (a department rule has no case)."""
        if alert.kind == "rule" and not alert.case_id:
            return "—"
        return self.percent(alert.ratio)

    def case_status(self, value: str | None) -> str:
        return CASE_OPEN[self.language] if value == "open" else self.word(value)


def to_csv(briefing: WeeklyBriefing, language: Language, zone: tzinfo) -> str:
    """The briefing as one CSV of sections (a spreadsheet opens it; UTF-8 with a BOM so
    that Excel reads the Chinese)."""
    labels, shown = LABELS[language], Formats(language, zone)
    out = io.StringIO()
    out.write("\ufeff")
    rows = csv.writer(out, lineterminator="\r\n")
    rows.writerow([labels["title"]])
    rows.writerow([labels["hospital"], briefing.hospital_id])
    rows.writerow([labels["department"], _department(briefing, language)])
    rows.writerow([labels["week"], briefing.week, f"{briefing.from_} – {briefing.to}"])
    rows.writerow([])
    rows.writerow([labels["indicators"]])
    figures = briefing.indicators.model_dump()
    for name, kind in INDICATOR_ROWS:
        rows.writerow([labels[name], _plain(figures[name], kind)])
    rows.writerow([])
    rows.writerow([labels["drgs"]])
    rows.writerow([labels["drg"], "", *(labels[name] for name, _ in INDICATOR_ROWS)])
    for group in briefing.drgs:
        values = group.model_dump()
        rows.writerow(
            [group.key or "", group.name or "", *(_plain(values[n], k) for n, k in INDICATOR_ROWS)]
        )
    rows.writerow([])
    rows.writerow([labels["red_cases"]])
    rows.writerow(
        [
            labels["case"],
            labels["department"],
            labels["drg"],
            labels["reached_red"],
            labels["ratio_at_red"],
            labels["causes"],
            labels["now"],
            labels["ratio"],
            labels["alert_status"],
            labels["reason"],
            labels["note"],
        ]
    )
    for case in briefing.red_cases:
        rows.writerow(
            [
                case.case_id,
                case.department or "",
                case.drg_code or "",
                shown.moment(case.reached_red_at),
                case.ratio_at_red,
                "; ".join(f"{c.item_name} {c.amount}" for c in case.causes),
                shown.case_status(case.status),
                case.ratio or "",
                shown.word(case.alert_status),
                shown.word(case.resolution_reason),
                case.resolution_note or "",
            ]
        )
    rows.writerow([])
    rows.writerow([labels["alerts"]])
    rows.writerow(
        [
            labels["case"],
            labels["department"],
            labels["level"],
            labels["transition"],
            labels["ratio"],
            labels["raised"],
            labels["status"],
            labels["acted_by"],
            labels["reason"],
            labels["note"],
        ]
    )
    for alert in briefing.alerts:
        rows.writerow(
            [
                shown.subject(alert),
                alert.department or "",
                shown.word(alert.level),
                shown.change(alert),
                "" if alert.kind == "rule" and not alert.case_id else alert.ratio,
                shown.moment(alert.raised_at),
                shown.word(alert.status),
                alert.acted_by or "",
                shown.word(alert.reason),
                alert.note or "",
            ]
        )
    return out.getvalue()


def _plain(value: Any, kind: str) -> str:
    """A figure as a spreadsheet reads it: the exact decimal, no separators."""
    return "" if value is None else str(value)


def _department(briefing: WeeklyBriefing, language: Language) -> str:
    if briefing.department is None:
        return LABELS[language]["all_departments"]
    name = briefing.department_name_zh if language == "zh" else briefing.department_name_en
    name = name or briefing.department_name_zh or briefing.department_name_en
    return f"{name} ({briefing.department})" if name else briefing.department


@cache
def _environment() -> Environment:
    environment = Environment(autoescape=select_autoescape(default=True), auto_reload=False)
    return environment


@cache
def _template_source() -> str:
    return resources.files(__package__).joinpath("templates/weekly.html").read_text("utf-8")


@cache
def _style() -> str:
    return resources.files(__package__).joinpath("templates/weekly.css").read_text("utf-8")


def style_hash() -> str:
    """The CSP source that allows the page's one style element and nothing else."""
    digest = hashlib.sha256(_style().encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def to_html(briefing: WeeklyBriefing, language: Language, zone: tzinfo) -> str:
    """The briefing as a page to read and print."""
    template = _environment().from_string(_template_source())
    return template.render(
        b=briefing,
        lang=language,
        t=LABELS[language],
        f=Formats(language, zone),
        department=_department(briefing, language),
        figures=briefing.indicators.model_dump(),
        rows=INDICATOR_ROWS,
        style=_style(),
    )
