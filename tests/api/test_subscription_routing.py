"""Who receives what: role defaults, filters, the owner's scope, the blue digest, the
work-chat robot formats, ownership of subscriptions. Real receiver, real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.alerting.rulewatch import sweep
from services.storage.models import CaseRecord, WebhookDelivery
from tests.api import test_rule_watch as rule_watch_tests
from tests.api.helpers import OPERATOR_KEY
from tests.api.webhooks import (
    Hooks,
    Receiver,
    raise_alert,
    running_app,
    running_receiver,
    settings_for,
    settled,
    until,
)


@pytest.fixture
async def hooks(postgres_url: str, pg_engine: AsyncEngine) -> AsyncIterator[Hooks]:
    async with (
        running_receiver() as receiver,
        running_app(settings_for(postgres_url), receiver) as app,
    ):
        yield app
        assert receiver.unverified == [], "every request must carry a valid signature"


def alert_ids(receiver: Receiver, endpoint: str) -> list[str]:
    return [r.payload["data"]["alert_id"] for r in receiver.got(endpoint)]


async def test_routing_follows_roles_filters_and_the_owners_scope(hooks: Hooks) -> None:
    head = await hooks.identity("department_head", ["H001"], ["CARD"])
    office = await hooks.identity("insurance_office", ["H001"], [])
    head_sub = await hooks.subscribe("head", head)
    office_sub = await hooks.subscribe("office", office)
    narrow_sub = await hooks.subscribe("narrow", office, departments=["SURG"], min_level="red")
    assert head_sub["min_level"] == "blue"
    assert office_sub["min_level"] == "yellow"

    card_blue = await raise_alert(hooks.sessions, level="blue", previous_level="none")
    surg_red = await raise_alert(hooks.sessions, department="SURG", case_id="C2")
    # a resolution after yellow: severity yellow, so the office hears of it too
    card_resolved = await raise_alert(
        hooks.sessions, level="none", previous_level="yellow", transition="resolved", case_id="C3"
    )
    other_hospital = await raise_alert(hooks.sessions, hospital_id="H002")
    surg_yellow = await raise_alert(
        hooks.sessions, department="SURG", level="yellow", previous_level="blue", case_id="C4"
    )
    sentinel = await raise_alert(hooks.sessions, case_id="C9")

    await until(
        lambda: (
            sentinel in alert_ids(hooks.receiver, "head")
            and sentinel in alert_ids(hooks.receiver, "office")
        ),
        15,
        "the sentinel at both",
    )
    await hooks.deliveries_when(narrow_sub["id"], settled, office)
    # fan-out goes in alert order, so once the sentinel is out every decision is made
    head_items = await hooks.deliveries_when(head_sub["id"], settled, head)
    office_items = await hooks.deliveries_when(office_sub["id"], settled, office)
    narrow_items = await hooks.deliveries(narrow_sub["id"], office)
    assert {i["alert_id"] for i in head_items} == {card_blue, card_resolved, sentinel}
    assert {i["alert_id"] for i in office_items} == {surg_red, card_resolved, surg_yellow, sentinel}
    assert {i["alert_id"] for i in narrow_items} == {surg_red}
    assert other_hospital not in alert_ids(hooks.receiver, "office")
    assert sorted(alert_ids(hooks.receiver, "head")) == sorted([card_blue, card_resolved, sentinel])

    # a filter may not widen the owner's scope
    response = await hooks.client.post(
        "/v1/subscriptions",
        json={"url": hooks.receiver.url("x"), "departments": ["SURG"]},
        headers={"Authorization": f"Bearer {head}"},
    )
    assert response.status_code == 422 and "departments" in response.json()["detail"]

    # the owner's scope is read at fan-out: a narrowed identity stops receiving
    async with hooks.engine.begin() as connection:
        await connection.execute(
            text("UPDATE identities SET departments = '[\"NEUR\"]' WHERE role = 'department_head'")
        )
    later = await raise_alert(hooks.sessions, case_id="C10")
    await until(lambda: later in alert_ids(hooks.receiver, "office"), 15, "the later alert")
    await asyncio.sleep(0.3)
    assert later not in alert_ids(hooks.receiver, "head")
    assert len(await hooks.deliveries(head_sub["id"], head)) == 3


async def test_blue_alerts_are_gathered_into_one_digest(hooks: Hooks) -> None:
    # FAST: the digest period is 1 s
    head = await hooks.identity("department_head", ["H001"], ["CARD"])
    subscription = await hooks.subscribe("digest", head, blue_digest=True)
    blues = [
        await raise_alert(hooks.sessions, level="blue", previous_level="none", case_id=f"B{n}")
        for n in range(3)
    ]
    red = await raise_alert(hooks.sessions, case_id="R1")
    await until(lambda: len(hooks.receiver.got("digest")) == 2, 4, "the red alert and a digest")
    first, second = hooks.receiver.got("digest")
    assert first.payload["type"] == "alert.escalated"
    assert first.payload["data"]["alert_id"] == red
    assert second.payload["type"] == "alert.digest"
    assert second.payload["data"]["count"] == 3
    assert [a["alert_id"] for a in second.payload["data"]["alerts"]] == blues
    await asyncio.sleep(1.3)  # no second digest for an empty period
    assert len(hooks.receiver.got("digest")) == 2
    items = await hooks.deliveries_when(subscription["id"], settled, head)
    assert sorted(i["kind"] for i in items) == ["alert", "digest"]


@pytest.mark.parametrize("message_format", ["wecom", "dingtalk"])
async def test_work_chat_robots_get_a_short_markdown_message(
    hooks: Hooks, message_format: str
) -> None:
    subscription = await hooks.subscribe("robot", format=message_format)
    # robots refuse with 200 and a non-zero errcode (here: rate limited): that is retried
    refused = orjson.dumps({"errcode": 45009, "errmsg": "api freq out of limit"})
    hooks.receiver.plan("robot", (200, {}, refused), (200, {}, b'{"errcode":0,"errmsg":"ok"}'))
    await raise_alert(hooks.sessions)
    await until(lambda: len(hooks.receiver.got("robot")) == 2, 3, "two attempts")
    body: dict[str, Any] = orjson.loads(hooks.receiver.got("robot")[1].body)
    assert body["msgtype"] == "markdown"
    if message_format == "wecom":
        assert set(body["markdown"]) == {"content"}
        content = body["markdown"]["content"]
        assert len(content.encode()) <= 4096
    else:
        assert set(body["markdown"]) == {"title", "text"}
        assert "红色" in body["markdown"]["title"]
        content = body["markdown"]["text"]
    assert content.startswith("### ")
    for shown in ("H001 / C1", "CARD", "黄色 → **红色**", "102.35%", "41350.00", "40400.83"):
        assert shown in content
    assert "药物洗脱支架（STENT）37000.00" in content
    [item] = await hooks.deliveries_when(subscription["id"], settled)
    assert item["status"] == "delivered" and item["attempts"] == 2
    assert "errcode 45009" in item["attempt_log"][0]["error"]


async def test_a_subscription_is_its_owners_alone(hooks: Hooks) -> None:
    owner = await hooks.identity("department_head", ["H001"], ["CARD"])
    stranger = await hooks.identity("department_head", ["H001"], ["CARD"])
    subscription = await hooks.subscribe("mine", owner)
    as_owner = {"Authorization": f"Bearer {owner}"}
    as_stranger = {"Authorization": f"Bearer {stranger}"}
    path = f"/v1/subscriptions/{subscription['id']}"

    assert "secret" not in (await hooks.client.get(path, headers=as_owner)).json()
    for method, suffix in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/test"),
        ("GET", "/deliveries"),
        ("POST", "/deliveries/msg_0000000000/retry"),
    ]:
        response = await hooks.client.request(
            method, path + suffix, headers=as_stranger, json={} if method == "PATCH" else None
        )
        assert response.status_code == 404, (method, suffix, response.text)
    listed = (await hooks.client.get("/v1/subscriptions", headers=as_stranger)).json()
    assert listed == {"items": [], "next_cursor": None}
    # the (local) admin sees every subscription
    listed = (await hooks.client.get("/v1/subscriptions")).json()
    assert [s["id"] for s in listed["items"]] == [subscription["id"]]

    response = await hooks.client.post(path + "/test", headers=as_owner)
    assert response.status_code == 202 and response.json()["kind"] == "test"
    await until(lambda: len(hooks.receiver.got("mine")) == 1, 3, "the test message")
    assert hooks.receiver.got("mine")[0].payload["type"] == "webhook.test"
    assert (await hooks.client.delete(path, headers=as_owner)).status_code == 204
    assert (await hooks.client.get(path, headers=as_owner)).status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://example.org/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://127.0.0.1/h", "format": "slack"}, "format"),
        ({"url": "http://127.0.0.1/h", "min_level": "none"}, "min_level"),
        ({"url": "http://127.0.0.1/h", "hospitals": ["H001"]}, None),
    ],
)
async def test_subscription_input_is_checked(
    hooks: Hooks, fields: dict[str, Any], field: str | None
) -> None:
    response = await hooks.client.post("/v1/subscriptions", json=fields)
    if field is None:
        assert response.status_code == 201
        return
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_production_requires_https(postgres_url: str, pg_engine: AsyncEngine) -> None:
    settings = settings_for(postgres_url, mode="production", api_keys=OPERATOR_KEY)
    async with running_receiver() as receiver, running_app(settings, receiver) as app:
        headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        plain = await app.client.post(
            "/v1/subscriptions", json={"url": "http://example.org/h"}, headers=headers
        )
        assert plain.status_code == 422 and "https" in plain.json()["detail"]
        secure = await app.client.post(
            "/v1/subscriptions", json={"url": "https://example.org/h"}, headers=headers
        )
        assert secure.status_code == 201
        # a hospital intranet is an endpoint once DRGWATCH_WEBHOOK_ALLOWED_TARGETS names
        # it (test_webhook_targets.py); the service's own machine and the cloud metadata
        # address never are by default
        intranet = await app.client.post(
            "/v1/subscriptions", json={"url": "https://10.20.0.7/his/alerts"}, headers=headers
        )
        assert intranet.status_code == 422
        for internal in (
            "https://127.0.0.1:8000/v1/events",
            "https://localhost/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://0.0.0.0/x",
        ):
            refused = await app.client.post(
                "/v1/subscriptions", json={"url": internal}, headers=headers
            )
            assert refused.status_code == 422, internal
            assert refused.json()["detail"].startswith("url:")


async def test_an_acknowledged_case_is_not_notified_again_for_the_same_level(
    hooks: Hooks,
) -> None:
    head = await hooks.identity("department_head", ["H001"], ["CARD"])
    await hooks.subscribe("head", head)
    as_head = {"Authorization": f"Bearer {head}"}

    async def raise_and_settle(**alert: str) -> str:
        alert_id = await raise_alert(hooks.sessions, case_id="C7", **alert)
        sentinel = await raise_alert(hooks.sessions, case_id="S", department="CARD")
        # the two fan out together and are sent concurrently: once the sentinel is in,
        # the alert's delivery (if it is news) exists, and is waited for until sent
        await until(lambda: sentinel in alert_ids(hooks.receiver, "head"), 15, "the sentinel")
        async with hooks.sessions() as db_session:
            delivery = await db_session.scalar(
                select(func.count()).where(WebhookDelivery.alert_id == alert_id)
            )
        if delivery:
            await until(lambda: alert_id in alert_ids(hooks.receiver, "head"), 15, "the alert")
        return alert_id

    yellow = await raise_and_settle(level="yellow", previous_level="blue")
    acked = await hooks.client.post(f"/v1/alerts/{yellow}/ack", json={}, headers=as_head)
    assert acked.status_code == 200, acked.text
    red = await raise_and_settle(level="red", previous_level="yellow")  # further: news
    assert (await hooks.client.post(f"/v1/alerts/{red}/ack", json={}, headers=as_head)).is_success
    down = await raise_and_settle(
        level="yellow", previous_level="red", transition="de-escalated"
    )  # de-escalations are always told
    red_again = await raise_and_settle(level="red", previous_level="yellow")  # a repeat
    below = await raise_and_settle(level="none", previous_level="yellow", transition="resolved")
    new_episode = await raise_and_settle(level="red", previous_level="none")  # news again

    told = [a for a in alert_ids(hooks.receiver, "head") if a in {yellow, red, down, red_again}]
    assert told == [yellow, red, down]
    assert below in alert_ids(hooks.receiver, "head")
    assert new_episode in alert_ids(hooks.receiver, "head")


async def test_forecast_alerts_go_where_red_alerts_go_unless_a_subscription_names_kinds(
    hooks: Hooks,
) -> None:
    head = await hooks.identity("department_head", ["H001"], ["CARD"])
    office = await hooks.identity("insurance_office", ["H001"], [])
    head_sub = await hooks.subscribe("head", head)
    office_sub = await hooks.subscribe("office", office, format="wecom")
    levels_sub = await hooks.subscribe("levels", office, kinds=["level"])
    forecasts_sub = await hooks.subscribe("forecasts", office, kinds=["forecast", "forecast"])
    assert (office_sub["kinds"], levels_sub["kinds"], forecasts_sub["kinds"]) == (
        [],
        ["level"],
        ["forecast"],
    )

    forecast = await raise_alert(
        hooks.sessions, level="red", previous_level="none", transition="projected", kind="forecast"
    )
    red = await raise_alert(hooks.sessions, case_id="C2")

    for subscription, owner in (
        (head_sub, head),
        (office_sub, office),
        (levels_sub, office),
        (forecasts_sub, office),
    ):
        await hooks.deliveries_when(subscription["id"], settled, owner)
    await until(lambda: len(hooks.receiver.got("office")) == 2, 3, "both at the office")
    assert set(alert_ids(hooks.receiver, "head")) == {forecast, red}
    assert [r.payload["data"]["alert_id"] for r in hooks.receiver.got("forecasts")] == [forecast]
    assert [r.payload["data"]["alert_id"] for r in hooks.receiver.got("levels")] == [red]
    forecast_message = hooks.receiver.got("forecasts")[0].payload
    assert forecast_message["type"] == "alert.forecast"
    assert forecast_message["data"]["projected_total"] == "45000.00"
    robot_texts = [r.payload["markdown"]["content"] for r in hooks.receiver.got("office")]
    assert any("费用预测预警" in text and "预计总费用 45000.00" in text for text in robot_texts)

    narrowed = await hooks.client.patch(
        f"/v1/subscriptions/{levels_sub['id']}",
        json={"kinds": ["forecast"]},
        headers={"Authorization": f"Bearer {office}"},
    )
    assert narrowed.status_code == 200 and narrowed.json()["kinds"] == ["forecast"]
    every_kind = await hooks.client.patch(
        f"/v1/subscriptions/{levels_sub['id']}",
        json={"kinds": ["rule", "target", "forecast", "level"]},
        headers={"Authorization": f"Bearer {office}"},
    )
    assert every_kind.status_code == 200, every_kind.text
    assert every_kind.json()["kinds"] == ["forecast", "level", "rule", "target"]
    refused = await hooks.client.patch(
        f"/v1/subscriptions/{levels_sub['id']}",
        json={"kinds": ["rules"]},
        headers={"Authorization": f"Bearer {office}"},
    )
    assert refused.status_code == 422


async def test_department_alerts_reach_that_departments_head_and_the_office(hooks: Hooks) -> None:
    head = await hooks.identity("department_head", ["H001"], ["CARD"])
    other_head = await hooks.identity("department_head", ["H001"], ["SURG"])
    office = await hooks.identity("insurance_office", ["H001"], [])
    head_sub = await hooks.subscribe("head", head, format="dingtalk")
    other_sub = await hooks.subscribe("other", other_head)
    targets_sub = await hooks.subscribe("targets", office, kinds=["target"])
    levels_sub = await hooks.subscribe("levels", office, kinds=["level", "forecast"])

    target = await raise_alert(
        hooks.sessions, case_id="", level="red", previous_level="none", kind="target"
    )
    red = await raise_alert(hooks.sessions, case_id="C2")

    for subscription, owner in (
        (head_sub, head),
        (targets_sub, office),
        (levels_sub, office),
    ):
        await hooks.deliveries_when(subscription["id"], settled, owner)
    await until(lambda: len(hooks.receiver.got("head")) == 2, 3, "both at the head")
    # the other department's head is sent neither
    listed = await hooks.client.get(
        f"/v1/subscriptions/{other_sub['id']}/deliveries",
        headers={"Authorization": f"Bearer {other_head}"},
    )
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert hooks.receiver.got("other") == []
    assert [r.payload["data"]["alert_id"] for r in hooks.receiver.got("targets")] == [target]
    assert [r.payload["data"]["alert_id"] for r in hooks.receiver.got("levels")] == [red]
    message = hooks.receiver.got("targets")[0].payload
    assert message["type"] == "alert.target"
    assert (message["data"]["target_period"], message["data"]["case_id"]) == ("2026-11", "")
    robot_texts = [r.payload["markdown"]["text"] for r in hooks.receiver.got("head")]
    assert any("科室目标预警" in text and "指标：总费用" in text for text in robot_texts)


async def test_department_rule_alerts_reach_that_departments_head_and_the_office(
    hooks: Hooks,
) -> None:
    head = await hooks.identity("department_head", ["H001"], ["CARD"])
    other_head = await hooks.identity("department_head", ["H001"], ["SURG"])
    office = await hooks.identity("insurance_office", ["H001"], [])
    head_sub = await hooks.subscribe("head", head, format="wecom")
    other_sub = await hooks.subscribe("other", other_head)
    rules_sub = await hooks.subscribe("rules", office, kinds=["rule"])
    # CARD's November: two low-ratio cases of five, found by the worker's rule watch
    rows = rule_watch_tests.month_of(
        "CARD", "2026-11", ["5000.00", "7000.00", "12000.00", "12000.00", "12000.00"]
    )
    async with hooks.sessions() as db_session:
        await db_session.execute(insert(CaseRecord), rows)
        await db_session.commit()
    raised = await sweep(
        hooks.engine,
        hooks.sessions,
        rule_watch_tests.RULES,
        rule_watch_tests.ZONE,
        rule_watch_tests.NOW,
    )
    assert raised == 1

    for subscription, owner in ((head_sub, head), (rules_sub, office)):
        await hooks.deliveries_when(subscription["id"], settled, owner)
    await until(lambda: len(hooks.receiver.got("head")) == 1, 3, "the alert at the head")
    listed = await hooks.client.get(
        f"/v1/subscriptions/{other_sub['id']}/deliveries",
        headers={"Authorization": f"Bearer {other_head}"},
    )
    assert listed.status_code == 200 and listed.json()["items"] == []
    [message] = [r.payload for r in hooks.receiver.got("rules")]
    assert message["type"] == "alert.rule"
    assert (message["data"]["rule_id"], message["data"]["case_id"]) == ("low-ratio-share", "")
    assert (message["data"]["department"], message["data"]["rule_period"]) == ("CARD", "2026-11")
    [robot] = [r.payload["markdown"]["content"] for r in hooks.receiver.got("head")]
    assert robot.startswith("### 🟡 规则预警 · 低倍率病例占比过高\n")
    assert "> 科室：**H001 / CARD**　期间：2026-11" in robot


async def test_rule_alerts_reach_subscriptions_that_want_them_titled_by_their_rule(
    hooks: Hooks,
) -> None:
    head = await hooks.identity("department_head", ["H001"], ["CARD"])
    other_head = await hooks.identity("department_head", ["H001"], ["SURG"])
    office = await hooks.identity("insurance_office", ["H001"], [])
    head_sub = await hooks.subscribe("head", head, format="dingtalk")
    other_sub = await hooks.subscribe("other", other_head)
    rules_sub = await hooks.subscribe("rules", office, kinds=["rule"], format="wecom")
    levels_sub = await hooks.subscribe("levels", office, kinds=["level"])
    standard_sub = await hooks.subscribe("standard", office, kinds=["rule"])
    assert rules_sub["kinds"] == ["rule"]

    # a yellow finding on a case standing at red: a yellow alert, not a red one
    case_rule = await raise_alert(
        hooks.sessions, level="yellow", previous_level="red", transition="raised", kind="rule"
    )
    department_rule = await raise_alert(
        hooks.sessions,
        case_id="",
        level="yellow",
        previous_level="none",
        transition="raised",
        kind="rule",
    )
    red = await raise_alert(hooks.sessions, case_id="C2")

    for subscription, owner in (
        (head_sub, head),
        (rules_sub, office),
        (levels_sub, office),
        (standard_sub, office),
    ):
        await hooks.deliveries_when(subscription["id"], settled, owner)
    await until(lambda: len(hooks.receiver.got("head")) == 3, 3, "all three at the head")
    await until(lambda: len(hooks.receiver.got("rules")) == 2, 3, "both findings")
    assert hooks.receiver.got("other") == []
    listed = await hooks.client.get(
        f"/v1/subscriptions/{other_sub['id']}/deliveries",
        headers={"Authorization": f"Bearer {other_head}"},
    )
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert alert_ids(hooks.receiver, "levels") == [red]
    assert sorted(alert_ids(hooks.receiver, "standard")) == sorted([case_rule, department_rule])
    standard = {r.payload["data"]["alert_id"]: r.payload for r in hooks.receiver.got("standard")}
    assert standard[case_rule]["type"] == "alert.rule"
    assert standard[case_rule]["data"]["rule_name"] == {
        "zh": "重复检查检验",
        "en": "Repeated exam or lab",
    }
    assert standard[department_rule]["data"]["case_id"] == ""
    wecom = [r.payload["markdown"]["content"] for r in hooks.receiver.got("rules")]
    case_text = next(text for text in wecom if "病例" in text)
    assert case_text.startswith("### 🟡 规则预警 · 重复检查检验\n")
    assert "头颅CT（CT01）于 2026-11-22 再次收费，3 天内已于 2026-11-20 收费" in case_text
    department_text = next(text for text in wecom if "病例" not in text)
    assert department_text.startswith("### 🟡 规则预警 · 科室例均费用增长过快\n")
    assert "> 科室：**H001 / CARD**" in department_text
    titles = [r.payload["markdown"]["title"] for r in hooks.receiver.got("head")]
    assert sorted(titles) == [
        "🔴 DRG 费用预警 红色（升级）",
        "🟡 规则预警 · 科室例均费用增长过快",
        "🟡 规则预警 · 重复检查检验",
    ]
