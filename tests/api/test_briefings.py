"""The weekly department briefing: JSON, CSV and a printable page, and the command line,
over the cases and alerts of tests/api/test_indicators.py, on PostgreSQL and SQLite.

Week 2026-W45 (2 to 8 November, local days): CARD's C3 turned red on 3 November (a 40,000
consumable against a standard of 25,000) and C2 on 4 November; nothing was discharged
that week. Week 2026-W46 (9 to 15 November): C2 and C3 were discharged.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.api.briefings.service import last_complete_week, week_days
from tests.api import test_indicators as indicator_tests
from tests.api.conftest import Api

# the cases, alerts and service of the indicators' tests
database_url = indicator_tests.database_url
service = indicator_tests.service
seeded = indicator_tests.seeded
key_for = indicator_tests.key_for

WEEKLY = "/v1/hospitals/H001/briefings/weekly"


async def red_alert_of(api: Api, case_id: str) -> dict[str, Any]:
    alerts = (
        await api.client.get("/v1/alerts", params={"hospital_id": "H001", "case_id": case_id})
    ).json()["items"]
    return next(a for a in alerts if a["level"] == "red" and a["transition"] == "escalated")


async def test_a_week_of_one_department(seeded: Api) -> None:
    c3_red = await red_alert_of(seeded, "C3")
    answer = await seeded.client.post(
        f"/v1/alerts/{c3_red['alert_id']}/resolve",
        json={"reason": "new_technique", "note": "TAVI, first in the region"},
    )
    assert answer.status_code == 200, answer.text

    response = await seeded.client.get(WEEKLY, params={"department": "CARD", "week": "2026-W45"})

    assert response.status_code == 200, response.text
    briefing = response.json()
    assert (briefing["week"], briefing["from"], briefing["to"]) == (
        "2026-W45",
        "2026-11-02",
        "2026-11-08",
    )
    assert briefing["timezone"] == "Asia/Shanghai"
    # nothing was discharged in the week: no indicators, not zeros
    assert briefing["indicators"]["cases"] == 0
    assert briefing["indicators"]["cmi"] is None
    assert briefing["drgs"] == []
    # the costliest overrun first, each with what drove it when it turned red
    red = briefing["red_cases"]
    assert [case["case_id"] for case in red] == ["C3", "C2"]
    assert red[0]["ratio_at_red"] == "1.6000"  # 40,000 of 25,000
    assert red[0]["causes"][0]["amount"] == "40000"
    assert red[0]["causes"][0]["category"] == "consumable"
    assert (red[0]["status"], red[0]["total_cost"], red[0]["ratio"]) == (
        "discharged",
        "52000.00",
        "2.0800",
    )
    assert (red[0]["alert_status"], red[0]["resolution_reason"]) == (
        "under_review",
        "new_technique",
    )
    assert red[0]["resolution_note"] == "TAVI, first in the region"
    assert (red[1]["alert_status"], red[1]["resolution_reason"]) == ("open", None)
    # every alert the department had that week, and how each stands
    assert all(alert["department"] == "CARD" for alert in briefing["alerts"])
    assert {a["case_id"] for a in briefing["alerts"]} == {"C2", "C3"}
    c3 = next(a for a in briefing["alerts"] if a["alert_id"] == c3_red["alert_id"])
    assert (c3["status"], c3["last_action"], c3["reason"]) == (
        "under_review",
        "resolve",
        "new_technique",
    )
    tally = briefing["alert_tally"]
    assert tally["raised"]["red"] == 2
    assert tally["resolutions"] == {"new_technique": 1}
    assert sum(tally["by_status"].values()) == len(briefing["alerts"])


async def test_the_week_of_discharges_has_the_indicators(seeded: Api) -> None:
    both = await seeded.client.get(WEEKLY, params={"department": "CARD", "week": "2026-W46"})
    indicators = (
        await seeded.client.get(
            "/v1/hospitals/H001/indicators",
            params={"from": "2026-11-09", "to": "2026-11-15", "department": "CARD"},
        )
    ).json()

    briefing = both.json()
    # the same figures as the indicators endpoint for the same days
    assert briefing["indicators"] == indicators["overall"]
    assert briefing["indicators"]["cases"] == 2  # C2 and C3
    assert [group["key"] for group in briefing["drgs"]] == ["AA11", "BB22"]
    assert briefing["red_cases"] == []


async def test_a_department_head_sees_only_their_department(seeded: Api) -> None:
    head = await key_for(seeded, "Dr Wang, surgery", "department_head", ["H001"], ["SURG"])

    theirs = await seeded.client.get(WEEKLY, params={"week": "2026-W45"}, headers=head)
    other = await seeded.client.get(
        WEEKLY, params={"week": "2026-W45", "department": "CARD"}, headers=head
    )

    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["red_cases"] == []
    assert all(alert["department"] == "SURG" for alert in theirs.json()["alerts"])
    # another department's week holds nothing for them
    assert other.json()["red_cases"] == [] and other.json()["alerts"] == []
    assert other.json()["indicators"]["cases"] == 0
    outsider = await key_for(seeded, "HIS of H002", "hospital_system", ["H002"], [])
    refused = await seeded.client.get(WEEKLY, params={"week": "2026-W45"}, headers=outsider)
    assert refused.status_code == 404


async def test_csv_opens_in_a_spreadsheet(seeded: Api) -> None:
    response = await seeded.client.get(
        WEEKLY, params={"department": "CARD", "week": "2026-W45", "format": "csv", "lang": "zh"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "briefing-H001-CARD-2026-W45.csv" in response.headers["content-disposition"]
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")  # Excel reads UTF-8 only with the mark
    rows = list(csv.reader(io.StringIO(body[1:])))
    assert rows[0] == ["科室 DRG 运行周报"]
    red_header = rows.index(["本周红色预警病例及原因"]) + 1
    assert rows[red_header][0] == "病例"
    assert [row[0] for row in rows[red_header + 1 : red_header + 3]] == ["C3", "C2"]
    assert "item consumable-0 40000" in rows[red_header + 1][5]


async def test_the_page_escapes_what_people_wrote_and_runs_nothing(seeded: Api) -> None:
    c2_red = await red_alert_of(seeded, "C2")
    await seeded.client.post(
        f"/v1/alerts/{c2_red['alert_id']}/ack", json={"note": '<script>alert("x")</script>'}
    )

    response = await seeded.client.get(
        WEEKLY,
        params={"department": "CARD", "week": "2026-W45", "format": "html"},
        headers={"Accept-Language": "en-GB,en;q=0.9"},
    )

    assert response.status_code == 200, response.text
    page = response.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "Cases that turned red this week, and why" in page  # the browser's language
    assert "160.0%" in page and "40,000.00" in page
    policy = response.headers["content-security-policy"]
    assert "script-src" not in policy and "default-src 'none'" in policy
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    chinese = await seeded.client.get(
        WEEKLY, params={"department": "CARD", "week": "2026-W45", "format": "html", "lang": "zh"}
    )
    assert "本周红色预警病例及原因" in chinese.text and "待处理" in chinese.text


@pytest.mark.parametrize(
    ("week", "reason"),
    [("2026-W54", "2026 has no week 54"), ("2026-W00", "2026 has no week 0"), ("26-W1", "")],
)
async def test_a_week_that_does_not_exist_is_refused(seeded: Api, week: str, reason: str) -> None:
    response = await seeded.client.get(WEEKLY, params={"week": week})

    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "query.week"
    assert reason in error["reason"]


def test_weeks_are_iso_weeks() -> None:
    assert week_days("2026-W01") == (date(2025, 12, 29), date(2026, 1, 4))
    assert week_days("2020-W53")[1].isoformat() == "2021-01-03"
    # the default is the last week that has ended: on Monday 30 November, 23-29 November;
    # on Sunday 29 November that week has not ended yet
    assert last_complete_week(date(2026, 11, 30)) == "2026-W48"
    assert last_complete_week(date(2026, 11, 29)) == "2026-W47"


async def test_the_command_line_prints_the_week(seeded: Api, database_url: str) -> None:
    target = ["--database-url", database_url]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "briefing",
        *target,
        "--hospital",
        "H001",
        "--department",
        "CARD",
        "--week",
        "2026-W45",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()

    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert "H001 CARD, week 2026-W45 (2026-11-02 to 2026-11-08)" in text
    assert "cases that turned red: 2" in text
    lines = text.splitlines()
    c3 = next(line for line in lines if line.startswith("C3"))
    assert "1.6000" in c3 and "item consumable-0" in c3


async def test_the_command_line_writes_the_page(
    seeded: Api, database_url: str, tmp_path: Path
) -> None:
    page = tmp_path / "week.html"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "briefing",
        "--database-url",
        database_url,
        "--hospital",
        "H001",
        "--week",
        "2026-W45",
        "--format",
        "html",
        "--lang",
        "en",
        "--output",
        str(page),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()

    assert process.returncode == 0, err.decode()
    assert "Weekly department DRG briefing" in page.read_text("utf-8")
    wrong = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "briefing",
        "--database-url",
        database_url,
        "--hospital",
        "H001",
        "--week",
        "2026-W99",
        stderr=asyncio.subprocess.PIPE,
    )
    _, complaint = await wrong.communicate()
    assert wrong.returncode == 1
    assert complaint.decode().strip() == "drgwatch briefing: query.week: 2026 has no week 99"
