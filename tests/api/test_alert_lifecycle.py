"""The alert lifecycle (issue 5): acknowledge, resolve, review; actions, timeline, scope.

Alerts are raised by the real cost core and written by the projector; the app runs over
the session PostgreSQL. Callers are identities with real API keys,
resolved by the app's authentication middleware.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.access import service as access_service
from services.access.principal import Principal
from services.alerting.alerts import actions as alert_actions
from services.alerting.alerts.lifecycle import (
    STATUSES,
    Acknowledge,
    AlertMark,
    Command,
    InvalidTransition,
    Resolve,
    Review,
    Status,
    acknowledged_level_of,
    is_news,
    next_status,
)
from services.alerting.projector import write_batch
from services.casecost.rules import CaseRules
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files
from tests.api.conftest import Api
from tests.api.corefactory import PRICE_BOOK, CaseBuilder

# who acts, as specs: each test creates these identities with real API keys
WANG = Principal("wang", "Dr Wang", "department_head", frozenset({"H001"}), frozenset({"CARD"}))
LI = Principal("li", "Dr Li", "department_head", frozenset({"H001"}), frozenset({"SURG"}))
ZHAO = Principal("zhao", "Zhao (insurance office)", "insurance_office", frozenset({"H001"}))
QIAN = Principal("qian", "Qian (insurance office H002)", "insurance_office", frozenset({"H002"}))
HIS = Principal("his", "HIS of H001", "hospital_system", frozenset({"H001"}))
PEOPLE = (WANG, LI, ZHAO, QIAN, HIS)
KEYS: dict[str, str] = {}  # spec id -> the API key issued in this test
IDS: dict[str, str] = {}  # spec id -> the identity id created in this test


@pytest.fixture
async def client(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """The app's client, with an identity and API key for each of PEOPLE."""
    KEYS.clear()
    IDS.clear()
    async with api.sessions() as db_session:
        for spec in PEOPLE:
            identity, key = await access_service.create_identity(
                db_session=db_session,
                name=spec.name,
                role=spec.role,
                hospitals=sorted(spec.hospitals),
                departments=sorted(spec.departments),
            )
            KEYS[spec.identity_id] = key
            IDS[spec.identity_id] = identity.id
        await db_session.commit()
    yield api.client


def as_(spec: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[spec.identity_id]}"}


async def write(api: Api, *cases: CaseBuilder) -> None:
    await write_batch(api.engine, api.sessions, [c.to_dict() for c in cases], [])


def red_case(
    case_id: str = "C1", department: str = "CARD", clock: datetime | None = None
) -> CaseBuilder:
    """none -> blue -> yellow -> red: three alerts (standard 40400.83)."""
    start = clock or datetime.now(UTC) - timedelta(hours=1)
    case = CaseBuilder("H001", case_id, clock=start).admit(department=department)
    case.cost("37000.00", item_code="STENT", category="consumable", department=department)
    case.cost("2000.00", item_code="D1", department=department)
    case.cost("2000.00", item_code="D2", department=department)
    return case


async def alert_ids(api: Api, case_id: str = "C1") -> dict[str, str]:
    """The case's alert ids by level (the latest alert of each level)."""
    rows = await api.rows(
        "SELECT level, alert_id FROM alerts WHERE case_id = :case_id ORDER BY seq",
        case_id=case_id,
    )
    return {level: alert_id for level, alert_id in rows}


async def post(
    client: httpx.AsyncClient, alert_id: str, verb: str, caller: Principal, **body: Any
) -> httpx.Response:
    return await client.post(f"/v1/alerts/{alert_id}/{verb}", json=body, headers=as_(caller))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- actions and transitions over HTTP ------------------------------------------------------


async def test_acknowledge_records_who_when_and_the_note(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]
    before = datetime.now(UTC)

    response = await post(client, red, "ack", WANG, note="stent was planned; watching drugs")

    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["alert_id"] == red and body["level"] == "red"
    assert body["status"] == "acknowledged"
    [action] = body["actions"]
    assert action["action"] == "acknowledge"
    assert action["actor"] == {
        "identity_id": IDS["wang"],
        "name": "Dr Wang",
        "role": "department_head",
    }
    assert action["note"] == "stent was planned; watching drugs"
    assert (action["from_status"], action["to_status"]) == ("open", "acknowledged")
    assert before <= at(action["acted_at"]) <= after
    # the same is read back, and stored
    fetched = await client.get(f"/v1/alerts/{red}", headers=as_(WANG))
    assert fetched.status_code == 200
    # the alert detail adds the explanation of the case (tests/api/test_explanation.py)
    assert fetched.json().pop("explanation") is not None
    assert {k: v for k, v in fetched.json().items() if k != "explanation"} == body
    rows = await api.rows(
        "SELECT actor_id, actor_name, actor_role, action, note FROM alert_actions"
    )
    assert rows == [
        (
            IDS["wang"],
            "Dr Wang",
            "department_head",
            "acknowledge",
            "stent was planned; watching drugs",
        )
    ]


async def test_an_alert_nobody_acted_on_is_open(api: Api, client: httpx.AsyncClient) -> None:
    await write(api, red_case())
    blue = (await alert_ids(api))["blue"]
    body = (await client.get(f"/v1/alerts/{blue}", headers=as_(HIS))).json()
    assert body["status"] == "open" and body["actions"] == []
    assert body["level"] == "blue" and body["total_cost"] == "37000.00"


async def test_acknowledging_twice_is_409_naming_the_status(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]
    assert (await post(client, red, "ack", WANG)).status_code == 200

    again = await post(client, red, "ack", ZHAO, note="seen too")

    assert again.status_code == 409
    assert "acknowledged" in again.json()["detail"]
    assert await api.scalar("SELECT count(*) FROM alert_actions") == 1


async def test_unreasonable_overspend_resolves_at_once_and_is_final(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]

    resolved = await post(
        client, red, "resolve", WANG, reason="over_treatment", note="duplicate CT"
    )

    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved"
    [action] = body["actions"]
    assert action["reason"] == "over_treatment" and action["overspend"] == "unreasonable"
    assert (action["from_status"], action["to_status"]) == ("open", "resolved")
    for verb, caller, payload in (
        ("ack", WANG, {}),
        ("resolve", WANG, {"reason": "management_gap"}),
        ("review", ZHAO, {"decision": "approved"}),
    ):
        refused = await post(client, red, verb, caller, **payload)
        assert refused.status_code == 409, verb
        assert refused.json()["detail"].startswith("the alert is resolved"), verb
    assert await api.scalar("SELECT count(*) FROM alert_actions") == 1


@pytest.mark.parametrize("reason", ["new_technique", "public_health_emergency", "price_change"])
async def test_reasonable_overspend_goes_to_review_and_approval_resolves_it(
    api: Api, client: httpx.AsyncClient, reason: str
) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]
    assert (await post(client, red, "ack", WANG)).status_code == 200

    submitted = await post(client, red, "resolve", WANG, reason=reason, note="TAVR, new item 2026")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "under_review"
    assert submitted.json()["actions"][-1]["overspend"] == "reasonable"
    # under review: the department cannot resolve it again, nor review it itself
    again = await post(client, red, "resolve", WANG, reason="over_treatment")
    assert again.status_code == 409 and "under_review" in again.json()["detail"]
    assert (await post(client, red, "review", WANG, decision="approved")).status_code == 403

    approved = await post(client, red, "review", ZHAO, decision="approved", note="special case")

    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "resolved"
    assert [
        (a["action"], a["from_status"], a["to_status"], a["actor"]["name"]) for a in body["actions"]
    ] == [
        ("acknowledge", "open", "acknowledged", "Dr Wang"),
        ("resolve", "acknowledged", "under_review", "Dr Wang"),
        ("review", "under_review", "resolved", "Zhao (insurance office)"),
    ]
    assert body["actions"][2]["decision"] == "approved"
    assert body["actions"][2]["note"] == "special case"
    times = [at(a["acted_at"]) for a in body["actions"]]
    assert times == sorted(times)


async def test_the_history_carries_each_alerts_status_and_filters_by_it(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, red_case("C1"), red_case("C2"))
    first, second = (await alert_ids(api, "C1"))["red"], (await alert_ids(api, "C2"))["red"]
    await post(client, first, "resolve", WANG, reason="new_technique", note="TAVR")
    await post(client, second, "ack", WANG)

    async def listed(**params: str) -> dict[str, str]:
        response = await client.get("/v1/alerts", params=params, headers=as_(ZHAO))
        assert response.status_code == 200, response.text
        return {item["alert_id"]: item["status"] for item in response.json()["items"]}

    everything = await listed()
    assert len(everything) == 6
    assert everything[first] == "under_review" and everything[second] == "acknowledged"
    assert set(everything.values()) == {"open", "under_review", "acknowledged"}
    # the insurance office's review queue
    assert await listed(status="under_review") == {first: "under_review"}
    assert await listed(status="acknowledged,under_review", level="red") == {
        first: "under_review",
        second: "acknowledged",
    }
    assert len(await listed(status="open")) == 4
    await post(client, first, "review", ZHAO, decision="approved")
    assert await listed(status="under_review") == {}
    assert (await client.get("/v1/alerts?status=closed", headers=as_(ZHAO))).status_code == 422


async def test_a_rejected_review_returns_the_alert_to_resolve_again(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]
    await post(client, red, "resolve", WANG, reason="price_change")

    rejected = await post(
        client, red, "review", ZHAO, decision="rejected", note="no price change for D1/D2 in 2026"
    )

    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "returned"
    assert rejected.json()["actions"][-1]["note"] == "no price change for D1/D2 in 2026"
    # returned: not reviewable, not acknowledgeable, but resolvable again
    assert (await post(client, red, "review", ZHAO, decision="approved")).status_code == 409
    refused_ack = await post(client, red, "ack", WANG)
    assert refused_ack.status_code == 409 and "returned" in refused_ack.json()["detail"]
    resolved = await post(client, red, "resolve", WANG, reason="management_gap", note="fixed")
    assert resolved.status_code == 200
    assert [a["to_status"] for a in resolved.json()["actions"]] == [
        "under_review",
        "returned",
        "resolved",
    ]


async def test_other_goes_to_review_and_needs_a_note(api: Api, client: httpx.AsyncClient) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]

    bare = await post(client, red, "resolve", WANG, reason="other")
    blank = await post(client, red, "resolve", WANG, reason="other", note="   ")
    for response in (bare, blank):
        assert response.status_code == 422
        assert response.json()["errors"][0]["reason"] == "note: required when the reason is other"

    explained = await post(client, red, "resolve", WANG, reason="other", note="rare complication")
    assert explained.status_code == 200
    assert explained.json()["status"] == "under_review"
    assert explained.json()["actions"][0]["overspend"] is None


@pytest.mark.parametrize(
    ("verb", "payload", "field"),
    [
        ("resolve", {"reason": "bad_luck"}, "reason"),
        ("resolve", {}, "reason"),
        ("review", {"decision": "maybe"}, "decision"),
        ("review", {"decision": "rejected"}, "body"),
        ("ack", {"note": "x" * 2001}, "note"),
        ("ack", {"note": "ok", "status": "resolved"}, "status"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    api: Api, client: httpx.AsyncClient, verb: str, payload: dict[str, Any], field: str
) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]
    response = await client.post(f"/v1/alerts/{red}/{verb}", json=payload, headers=as_(ZHAO))
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert await api.scalar("SELECT count(*) FROM alert_actions") == 0


async def test_an_alert_below_every_threshold_is_acknowledged_but_not_resolved(
    api: Api, client: httpx.AsyncClient
) -> None:
    case = red_case()
    case.cost("30000.00", item_code="STENT", category="consumable", kind="credit")
    await write(api, case)
    back = (await alert_ids(api))["none"]

    refused = await post(client, back, "resolve", WANG, reason="over_treatment")
    assert refused.status_code == 409 and "level none" in refused.json()["detail"]
    assert (await post(client, back, "ack", WANG, note="credit booked")).status_code == 200


async def test_concurrent_acknowledgements_record_one(api: Api, client: httpx.AsyncClient) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]

    responses = await asyncio.gather(
        *(post(client, red, "ack", caller) for caller in (WANG, ZHAO, WANG, ZHAO))
    )

    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    assert await api.scalar("SELECT count(*) FROM alert_actions") == 1


# --- permissions and scope -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "verb", "payload"),
    [
        (HIS, "ack", {}),
        (HIS, "resolve", {"reason": "over_treatment"}),
        (HIS, "review", {"decision": "approved"}),
        (WANG, "review", {"decision": "approved"}),
    ],
)
async def test_a_role_without_the_permission_is_403(
    api: Api, client: httpx.AsyncClient, caller: Principal, verb: str, payload: dict[str, Any]
) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]
    await post(client, red, "resolve", ZHAO, reason="new_technique")  # under review

    response = await post(client, red, verb, caller, **payload)

    assert response.status_code == 403, response.text
    assert caller.role in response.json()["detail"]
    assert await api.scalar("SELECT count(*) FROM alert_actions") == 1


async def test_another_departments_alert_and_case_are_not_found(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, red_case("C1", "CARD"), red_case("C2", "SURG"))
    card_red = (await alert_ids(api, "C1"))["red"]
    surg_red = (await alert_ids(api, "C2"))["red"]
    missing = await client.get("/v1/alerts/no-such-alert", headers=as_(LI))
    assert missing.status_code == 404

    for caller in (LI, QIAN):  # another department; another hospital's insurance office
        read = await client.get(f"/v1/alerts/{card_red}", headers=as_(caller))
        assert read.status_code == 404
        assert read.json()["detail"] == f"no alert {card_red}"
        assert (await post(client, card_red, "ack", caller)).status_code == 404
        resolve = await post(client, card_red, "resolve", caller, reason="over_treatment")
        assert resolve.status_code == 404
        timeline = await client.get("/v1/hospitals/H001/cases/C1/timeline", headers=as_(caller))
        assert timeline.status_code == 404
    assert await api.scalar("SELECT count(*) FROM alert_actions") == 0
    # each sees their own
    assert (await post(client, surg_red, "ack", LI)).status_code == 200
    assert (await post(client, card_red, "ack", WANG)).status_code == 200
    assert (
        await client.get("/v1/hospitals/H001/cases/C2/timeline", headers=as_(LI))
    ).status_code == 200
    # and the hospital's insurance office sees every department
    assert (await client.get(f"/v1/alerts/{card_red}", headers=as_(ZHAO))).status_code == 200


async def test_an_unknown_case_has_no_timeline(api: Api, client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/hospitals/H001/cases/NOPE/timeline", headers=as_(ZHAO))
    assert response.status_code == 404


# --- the case timeline ---------------------------------------------------------------------


async def test_the_timeline_tells_the_case_story_in_order(
    api: Api, client: httpx.AsyncClient
) -> None:
    case = CaseBuilder("H001", "C1", clock=datetime.now(UTC) - timedelta(hours=1)).admit()
    case.cost("37000.00", item_code="STENT", category="consumable")  # blue
    await write(api, case)
    blue = (await alert_ids(api))["blue"]
    acked = await post(client, blue, "ack", WANG, note="stent placed as planned")
    # the builder's clock moves one second per event: yellow 1 ms after the ack, red 1 s after
    case.clock = at(acked.json()["actions"][0]["acted_at"]) - timedelta(milliseconds=999)
    case.cost("2000.00", item_code="D1").cost("2000.00", item_code="D2")  # yellow, red
    await write(api, case)
    await asyncio.sleep(max(0.0, (case.clock - datetime.now(UTC)).total_seconds()) + 0.01)
    red = (await alert_ids(api))["red"]
    await post(client, red, "resolve", WANG, reason="price_change", note="new price list")
    await post(client, red, "review", ZHAO, decision="rejected", note="prices unchanged")
    await post(client, red, "resolve", WANG, reason="over_treatment", note="repeat labs")

    response = await client.get("/v1/hospitals/H001/cases/C1/timeline", headers=as_(WANG))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["hospital_id"], body["case_id"]) == ("H001", "C1")
    entries = body["entries"]
    assert [(e["kind"], e["level"]) for e in entries] == [
        ("alert", "blue"),
        ("acknowledged", "blue"),
        ("alert", "yellow"),
        ("alert", "red"),
        ("submitted_for_review", "red"),
        ("review_rejected", "red"),
        ("resolved", "red"),
    ]
    moments = [at(e["at"]) for e in entries]
    assert moments == sorted(moments)
    assert [e["summary"] for e in entries] == [
        "escalated none -> blue: cost 37000.00 of 40400.83 (91.58% of the DRG standard)",
        "Dr Wang (department_head) acknowledged the blue alert: stent placed as planned",
        "escalated blue -> yellow: cost 39000.00 of 40400.83 (96.53% of the DRG standard)",
        "escalated yellow -> red: cost 41000.00 of 40400.83 (101.48% of the DRG standard)",
        "Dr Wang (department_head) resolved the red alert as reasonable overspend, price_change;"
        " sent to the insurance office for review: new price list",
        "Zhao (insurance office) (insurance_office) rejected the resolution of the red alert,"
        " back to the department: prices unchanged",
        "Dr Wang (department_head) resolved the red alert as unreasonable overspend,"
        " over_treatment: repeat labs",
    ]
    for entry in entries:
        if entry["kind"] == "alert":
            assert entry["alert"]["alert_id"] == entry["alert_id"] and entry["action"] is None
        else:
            assert entry["action"]["actor"]["identity_id"] in {IDS["wang"], IDS["zhao"]}
            assert entry["alert"] is None


async def test_a_rule_alert_in_the_timeline_reads_as_its_rule_and_finding(
    api: Api, client: httpx.AsyncClient
) -> None:
    # the shipped rules: an order of 10 lab tests is above the bound of 5 (large-order)
    rules = CaseRules.compile(load_rule_files(DEFAULT_RULES_DIR), ZoneInfo("Asia/Shanghai"))
    book = dataclasses.replace(PRICE_BOOK, case_rules=rules)
    case = CaseBuilder("H001", "C1", clock=datetime.now(UTC) - timedelta(hours=1), price_book=book)
    case.admit().cost("450.00", category="lab", item_code="L2205", quantity="10")
    await write(api, case)

    response = await client.get("/v1/hospitals/H001/cases/C1/timeline", headers=as_(WANG))

    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    (entry,) = [e for e in entries if (e.get("alert") or {}).get("kind") == "rule"]
    alert = entry["alert"]
    assert (alert["rule_id"], entry["level"]) == ("large-order", "yellow")
    assert entry["summary"] == f"rule Unusually large order (yellow): {alert['text_en']}"
    assert "quantity 10 over the bound of 5" in entry["summary"]


# --- the acknowledged level (the notifier's rule) ----------------------------------------


def marks(*levels: str) -> list[AlertMark]:
    """'red*' is a red alert someone acted on."""
    return [AlertMark(level=level.rstrip("*"), acted=level.endswith("*")) for level in levels]


@pytest.mark.parametrize(
    ("history", "acknowledged"),
    [
        ((), None),
        (("blue", "yellow", "red"), None),
        (("blue", "yellow*"), "yellow"),
        (("blue", "yellow*", "red"), "yellow"),  # escalation above it is news
        (("blue", "yellow", "red*", "yellow"), "red"),  # a dip does not end the episode
        (("blue", "yellow", "red*", "yellow", "red"), "red"),
        (("blue*", "yellow*", "red", "yellow*"), "yellow"),  # acting late on a lower one
        (("red*", "none", "blue"), None),  # back below every threshold: a new episode
        (("red*", "none", "blue*", "yellow"), "blue"),
        (("red*", "none*"), None),
    ],
)
def test_acknowledged_level_of(history: tuple[str, ...], acknowledged: str | None) -> None:
    assert acknowledged_level_of(marks(*history)) == acknowledged


def test_red_acknowledged_dipping_to_yellow_and_back_does_not_notify() -> None:
    history = marks("blue", "yellow", "red*", "yellow")
    assert not is_news("red", acknowledged_level_of(history))
    assert not is_news("yellow", acknowledged_level_of(history))


def test_yellow_acknowledged_then_red_notifies() -> None:
    history = marks("blue", "yellow*")
    assert is_news("red", acknowledged_level_of(history))
    assert not is_news("blue", acknowledged_level_of(history))


def test_a_new_episode_notifies_again() -> None:
    assert is_news("red", acknowledged_level_of(marks("red*", "none")))
    assert is_news("blue", None)


async def test_acknowledged_level_reads_the_case_from_the_database(
    api: Api, client: httpx.AsyncClient
) -> None:
    case = red_case()
    await write(api, case)

    async def level(case_id: str = "C1") -> str | None:
        async with api.sessions() as db_session:
            return await alert_actions.acknowledged_level(
                db_session=db_session, hospital_id="H001", case_id=case_id
            )

    assert await level() is None
    await post(client, (await alert_ids(api))["yellow"], "ack", WANG)
    assert await level() == "yellow"
    await post(client, (await alert_ids(api))["red"], "ack", WANG)
    assert await level() == "red"
    case.cost("1500.00", item_code="D2", kind="credit")  # 39500.00: yellow
    case.cost("2000.00", item_code="D3")  # 41500.00: red again
    await write(api, case)
    assert [r[0] for r in await api.rows("SELECT level FROM alerts ORDER BY seq")][-2:] == [
        "yellow",
        "red",
    ]
    assert await level() == "red"
    case.cost("30000.00", item_code="STENT", category="consumable", kind="credit")  # none
    await write(api, case)
    assert await level() is None
    assert await level("C2") is None


# --- the state machine, exhaustively -------------------------------------------------------

ALLOWED: dict[tuple[Status, str], Status] = {
    ("open", "ack"): "acknowledged",
    ("open", "resolve:over_treatment"): "resolved",
    ("open", "resolve:new_technique"): "under_review",
    ("open", "resolve:other"): "under_review",
    ("acknowledged", "resolve:management_gap"): "resolved",
    ("acknowledged", "resolve:public_health_emergency"): "under_review",
    ("acknowledged", "resolve:other"): "under_review",
    ("returned", "resolve:over_treatment"): "resolved",
    ("returned", "resolve:price_change"): "under_review",
    ("returned", "resolve:other"): "under_review",
    ("under_review", "review:approved"): "resolved",
    ("under_review", "review:rejected"): "returned",
}
COMMANDS: dict[str, Command] = {
    "ack": Acknowledge(),
    "resolve:over_treatment": Resolve("over_treatment"),
    "resolve:management_gap": Resolve("management_gap"),
    "resolve:new_technique": Resolve("new_technique"),
    "resolve:public_health_emergency": Resolve("public_health_emergency"),
    "resolve:price_change": Resolve("price_change"),
    "resolve:other": Resolve("other"),
    "review:approved": Review("approved"),
    "review:rejected": Review("rejected"),
}


def expected(status: Status, name: str) -> Status | None:
    if (status, name) in ALLOWED:
        return ALLOWED[(status, name)]
    # the table above lists one or two reasons per status; the rest follow the same rule
    if name.startswith("resolve:") and status in ("open", "acknowledged", "returned"):
        reason = name.split(":")[1]
        return "resolved" if reason in ("over_treatment", "management_gap") else "under_review"
    return None


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_transition(status: Status, name: str) -> None:
    want = expected(status, name)
    if want is None:
        with pytest.raises(InvalidTransition, match=rf"^the alert is {re.escape(status)};"):
            next_status(status, COMMANDS[name], alert_level="red")
    else:
        assert next_status(status, COMMANDS[name], alert_level="red") == want


async def test_actions_are_counted_for_prometheus(api: Api, client: httpx.AsyncClient) -> None:
    def count(text: str) -> float:
        pattern = (
            r'drgwatch_alert_actions_total\{action="acknowledge",status="acknowledged"\} (\S+)'
        )
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    await write(api, red_case())
    before = count((await client.get("/metrics")).text)
    await post(client, (await alert_ids(api))["red"], "ack", WANG)
    assert count((await client.get("/metrics")).text) == before + 1


async def test_embedded_mode_without_a_key_acts_as_the_local_admin(
    api: Api, client: httpx.AsyncClient
) -> None:
    await write(api, red_case())
    red = (await alert_ids(api))["red"]

    response = await client.post(f"/v1/alerts/{red}/ack", json={})

    assert response.status_code == 200, response.text
    assert response.json()["actions"][0]["actor"] == {
        "identity_id": "local",
        "name": "local (embedded mode)",
        "role": "admin",
    }
    assert response.json()["actions"][0]["note"] is None
