"""Each role against each endpoint: what it may do (or 403), and what it may see (or 404).

The callers are real identities with real API keys (`drgwatch users` does the same),
over cases and alerts written by the projector from the real cost core:
H001/C1 in CARD, H001/C2 in SURG, H002/C1 in CARD (four alerts each).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.access import service as access_service
from services.api.app import create_app
from services.api.auth import OPEN_PATHS, SESSION_PATH
from services.api.settings import ApiSettings
from services.api.ui import PAGE_PATHS
from tests.api.conftest import Api
from tests.api.helpers import OPERATOR_KEY, charge
from tests.api.live import serving
from tests.api.test_alerts import build, write
from tests.unit import fhir_samples

ROLES = ("his_h1", "head_card", "office_h1", "office_all", "admin")


@dataclass
class Caller:
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def _identities(api: Api) -> dict[str, Caller]:
    specs: dict[str, tuple[str, list[str], list[str]]] = {
        "his_h1": ("hospital_system", ["H001"], []),
        "head_card": ("department_head", ["H001"], ["CARD"]),
        "office_h1": ("insurance_office", ["H001"], []),
        "office_all": ("insurance_office", ["*"], []),
        "admin": ("admin", [], []),
    }
    callers = {}
    async with api.sessions() as db_session:
        for name, (role, hospitals, departments) in specs.items():
            _, key = await access_service.create_identity(
                db_session=db_session,
                name=name,
                role=role,
                hospitals=hospitals,
                departments=departments,
            )
            callers[name] = Caller(name, key)
        await db_session.commit()
    return callers


@pytest.fixture
async def callers(api: Api) -> dict[str, Caller]:
    await write(api, build())
    api.app.state.fhir_mapping = fhir_samples.MAPPING
    return await _identities(api)


def _event(event_id: str, hospital: str) -> dict[str, Any]:
    return charge(event_id, hospital_id=hospital)


def _hl7_charge(transaction_id: str, hospital: str) -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|HIS|{hospital}|DRGWATCH|DRGWATCH|20260302090000+0800||DFT^P03|"
            f"{transaction_id}|P|2.5",
            "PV1|1|I|W3|||||||CARD|||||||||C1|01",
            f"FT1|1|{transaction_id}||20260302090000+0800||CG|LAB001^Blood panel^LAB|||1|0.10"
            "|0.10|CARD",
        ]
    )


CATALOGUE = {
    "name": "matrix",
    "effective_from": "2026-01-01",
    "base_rates": {"employee": "12252.70"},
    "groups": [{"drg_code": "FM15", "name": "Coronary stent", "weight": "3.2973"}],
}
CHARGEMASTER = {
    "name": "matrix",
    "valid_from": "2026-01-01",
    "items": [
        {
            "item_code": "C-STENT-IMP",
            "name": "进口支架",
            "category": "consumable",
            "unit_price": "11800.00",
            "equivalence_group": "DES",
        },
    ],
}
THRESHOLDS = {"blue": "0.9", "yellow": "0.95", "red": "1.0"}
PRECHECK = {"items": [{"item_code": "STENT", "quantity": "1", "unit_price": "100.00"}]}

# a rule written through the matrix: switched off and for H001 only, so that nothing it
# leaves in the registry raises anything anywhere
MATRIX_RULE = {
    "rule": {
        "name": {"zh": "矩阵", "en": "Matrix"},
        "kind": "order_bound",
        "severity": "blue",
        "enabled": False,
        "hospitals": ["H001"],
    }
}
READ_RULES = dict(his_h1=403, head_card=200, office_h1=200, office_all=200, admin=200)
WRITE_RULES = dict(his_h1=403, head_card=403, office_h1=200, office_all=200, admin=200)

# (method, path, body, {caller: expected status}); one row per endpoint and scope case
MATRIX: list[tuple[str, str, Any, dict[str, int]]] = [
    (
        "GET",
        "/v1/hospitals/H001/cases/C1",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H001/cases/C2",
        None,
        dict(his_h1=200, head_card=404, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H002/cases/C1",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H001/cases",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H002/cases",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H001/cases?order=projected_ratio",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H001/open-cases/summary",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H002/open-cases/summary",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/hospitals/H001/cases/C2/precheck",
        PRECHECK,
        dict(his_h1=200, head_card=404, office_h1=200, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/hospitals/H002/cases/C1/precheck",
        PRECHECK,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/events",
        {"events": [_event("m-h1", "H001")]},
        dict(his_h1=202, head_card=403, office_h1=403, office_all=403, admin=202),
    ),
    (
        "POST",
        "/v1/events",
        {"events": [_event("m-h1b", "H001"), _event("m-h2", "H002")]},
        dict(his_h1=403, head_card=403, office_h1=403, office_all=403, admin=202),
    ),
    # HL7 v2 (a text body): the hospital is MSH-4
    (
        "POST",
        "/v1/hl7",
        _hl7_charge("m-hl7-h1", "H001"),
        dict(his_h1=200, head_card=403, office_h1=403, office_all=403, admin=200),
    ),
    (
        "POST",
        "/v1/hl7",
        _hl7_charge("m-hl7-h2", "H002"),
        dict(his_h1=403, head_card=403, office_h1=403, office_all=403, admin=200),
    ),
    # the same Encounter from each caller that may post: the first records it (201), the
    # next adds nothing new (200); a Bundle is answered 200 with a response per entry
    (
        "POST",
        "/v1/fhir",
        fhir_samples.encounter("E9"),
        dict(his_h1=201, head_card=403, office_h1=403, office_all=403, admin=200),
    ),
    (
        "POST",
        "/v1/fhir",
        fhir_samples.bundle(
            "batch",
            fhir_samples.encounter("E10"),
            fhir_samples.encounter("E11", serviceProvider={"reference": "Organization/H002"}),
        ),
        dict(his_h1=403, head_card=403, office_h1=403, office_all=403, admin=200),
    ),
    (
        "GET",
        "/v1/alerts",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/alerts/rule-counts?since=2026-12-01T00:00:00%2B08:00",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/dead-letters",
        None,
        dict(his_h1=200, head_card=403, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/drg-catalogues/current/groups/FM15",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=404, admin=404),
    ),
    (
        "POST",
        "/v1/drg-catalogues",
        {**CATALOGUE, "hospital_id": "H001"},
        dict(his_h1=403, head_card=403, office_h1=201, office_all=201, admin=201),
    ),
    (
        "POST",
        "/v1/drg-catalogues",
        CATALOGUE,
        dict(his_h1=403, head_card=403, office_h1=403, office_all=201, admin=201),
    ),
    (
        "GET",
        "/v1/drg-catalogues",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/drg-catalogues/current",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=404, admin=404),
    ),
    (
        "GET",
        "/v1/drg-catalogues/999",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=404, admin=404),
    ),
    (
        "POST",
        "/v1/drg-catalogues/999/withdraw",
        {"reason": "matrix"},
        dict(his_h1=403, head_card=403, office_h1=404, office_all=404, admin=404),
    ),
    (
        "POST",
        "/v1/chargemasters",
        {**CHARGEMASTER, "hospital_id": "H001"},
        dict(his_h1=403, head_card=403, office_h1=201, office_all=201, admin=201),
    ),
    (
        "POST",
        "/v1/chargemasters",
        CHARGEMASTER,
        dict(his_h1=403, head_card=403, office_h1=403, office_all=201, admin=201),
    ),
    (
        "GET",
        "/v1/chargemasters",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    # no chargemaster in the matrix's database: none is valid (tests/api/test_chargemaster.py
    # reads items role by role)
    (
        "GET",
        "/v1/chargemasters/current/items",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=404, admin=404),
    ),
    (
        "GET",
        "/v1/chargemasters/current/items/C-STENT-IMP",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=404, admin=404),
    ),
    (
        "GET",
        "/v1/chargemaster",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=404, admin=404),
    ),
    (
        "GET",
        "/v1/chargemaster/items/C-STENT-IMP",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=404, admin=404),
    ),
    (
        "GET",
        "/v1/alert-thresholds",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "DELETE",
        "/v1/alert-thresholds?hospital_id=H001&drg_code=FM15",
        None,
        dict(his_h1=403, head_card=403, office_h1=404, office_all=404, admin=404),
    ),
    (
        "DELETE",
        "/v1/alert-thresholds?hospital_id=*&drg_code=*",
        None,
        dict(his_h1=403, head_card=403, office_h1=403, office_all=404, admin=404),
    ),
    (
        "PUT",
        "/v1/alert-thresholds",
        {**THRESHOLDS, "hospital_id": "H001"},
        dict(his_h1=403, head_card=403, office_h1=200, office_all=200, admin=200),
    ),
    (
        "PUT",
        "/v1/alert-thresholds",
        THRESHOLDS,
        dict(his_h1=403, head_card=403, office_h1=403, office_all=200, admin=200),
    ),
    # webhook subscriptions: every role manages its own; another's (here: none) is 404
    (
        "POST",
        "/v1/subscriptions",
        {"url": "http://127.0.0.1:9/hook"},
        dict(his_h1=201, head_card=201, office_h1=201, office_all=201, admin=201),
    ),
    (
        "GET",
        "/v1/subscriptions",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    *[
        (method, f"/v1/subscriptions/sub_0000000000{suffix}", body, dict.fromkeys(ROLES, 404))
        for method, suffix, body in [
            ("GET", "", None),
            ("PATCH", "", {}),
            ("DELETE", "", None),
            ("POST", "/test", None),
            ("GET", "/deliveries", None),
            ("POST", "/deliveries/msg_0000000000/retry", None),
        ]
    ],
    (
        "GET",
        "/v1/alerts/{red:H001:C1}",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/alerts/{red:H001:C2}",
        None,
        dict(his_h1=200, head_card=404, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/alerts/{red:H002:C1}",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/alerts/{red:H001:C1}/ack",
        {"note": "seen; talking to the team"},
        dict(his_h1=403, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/alerts/{red:H001:C2}/ack",
        {"note": "seen"},
        dict(his_h1=403, head_card=404, office_h1=200, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/alerts/{red:H001:C1}/resolve",
        {"reason": "over_treatment", "note": "two stents where one would do"},
        dict(his_h1=403, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/alerts/{red:H002:C1}/resolve",
        {"reason": "management_gap"},
        dict(his_h1=403, head_card=404, office_h1=404, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/alerts/{under_review:H001:C1}/review",
        {"decision": "approved", "note": "new technique, appeal to the payer"},
        dict(his_h1=403, head_card=403, office_h1=200, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/alerts/{under_review:H002:C1}/review",
        {"decision": "rejected", "note": "not a new technique"},
        dict(his_h1=403, head_card=403, office_h1=404, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H001/cases/C2/timeline",
        None,
        dict(his_h1=200, head_card=404, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/v1/hospitals/H002/cases/C1/timeline",
        None,
        dict(his_h1=404, head_card=404, office_h1=404, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/identities",
        {"name": "matrix system", "role": "hospital_system", "hospitals": ["H001"]},
        dict(his_h1=403, head_card=403, office_h1=403, office_all=403, admin=201),
    ),
    # monitoring rules: department heads read them; the insurance office and admins change
    # them, a hospital's office only rules and switches of its own hospitals
    ("GET", "/v1/rules", None, READ_RULES),
    ("GET", "/v1/rules/repeat-exam", None, READ_RULES),
    (
        "GET",
        "/v1/rules/no-such-rule",
        None,
        dict(his_h1=403, head_card=404, office_h1=404, office_all=404, admin=404),
    ),
    (
        "PUT",
        "/v1/rules/matrix-rule",
        MATRIX_RULE,
        dict(his_h1=403, head_card=403, office_h1=201, office_all=200, admin=200),
    ),
    # a rule for every hospital: not one hospital's office's to write
    (
        "PUT",
        "/v1/rules/matrix-wide",
        {"rule": {**MATRIX_RULE["rule"], "hospitals": []}},
        dict(his_h1=403, head_card=403, office_h1=403, office_all=201, admin=200),
    ),
    (
        "PUT",
        "/v1/rules/repeat-exam/switches",
        {"hospital_id": "H001", "department": "CARD", "enabled": True},
        WRITE_RULES,
    ),
    (
        "PUT",
        "/v1/rules/repeat-exam/switches",
        {"hospital_id": "H002", "enabled": True},
        {**WRITE_RULES, "office_h1": 403},
    ),
    ("DELETE", "/v1/rules/repeat-exam/switches?hospital_id=H001", None, WRITE_RULES),
    ("POST", "/v1/rules/reload", None, WRITE_RULES),
    ("POST", "/v1/rules/dry-run", MATRIX_RULE, WRITE_RULES),
    (
        "GET",
        "/v1/identities",
        None,
        dict(his_h1=403, head_card=403, office_h1=403, office_all=403, admin=200),
    ),
    *[
        (
            "POST",
            f"/v1/identities/idn_0000000000000000/{action}",
            None,
            dict(his_h1=403, head_card=403, office_h1=403, office_all=403, admin=404),
        )
        for action in ("keys", "disable")
    ],
    # indicators, departments, targets, daily alerts, briefings: reading needs cases:read and the
    # hospital in scope (a department head's figures hold only their departments);
    # writing needs reference:write
    *[
        (method, f"/v1/hospitals/{hospital}{tail}", body, expected)
        for hospital, reading, writing in [
            (
                "H001",
                dict.fromkeys(ROLES, 200),
                dict(his_h1=403, head_card=403, office_h1=200, office_all=200, admin=200),
            ),
            (
                "H002",
                dict(his_h1=404, head_card=404, office_h1=404, office_all=200, admin=200),
                dict(his_h1=403, head_card=403, office_h1=404, office_all=200, admin=200),
            ),
        ]
        for method, tail, body, expected in [
            ("GET", "/indicators", None, reading),
            ("GET", "/departments", None, reading),
            ("PUT", "/departments/CARD", {"name_en": "Cardiology"}, writing),
            ("GET", "/targets", None, reading),
            ("GET", "/targets/progress", None, reading),
            ("PUT", "/targets/CARD/2026-12", {"cases": 40}, writing),
            ("GET", "/alerts/daily", None, reading),
            ("GET", "/briefings/weekly", None, reading),
            ("GET", "/briefings/weekly?format=html", None, reading),
        ]
    ],
    (
        "DELETE",
        "/v1/hospitals/H001/targets/SURG/2026-12",
        None,
        dict(his_h1=403, head_card=403, office_h1=404, office_all=404, admin=404),
    ),
    (
        "GET",
        "/v1/hospitals",
        None,
        dict.fromkeys(ROLES, 200),
    ),
    (
        "PUT",
        "/v1/identities/idn_0000000000000000/password",
        {"password": "twelve or more characters"},
        dict(his_h1=403, head_card=403, office_h1=403, office_all=403, admin=404),
    ),
    # the caller's own sign-in state answers everyone; an API key's caller has no
    # session to end, and a name and password that match no one are 401 for all
    (
        "GET",
        "/v1/session",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "POST",
        "/v1/session",
        {"name": "nobody", "password": "not anyone's password"},
        dict.fromkeys(ROLES, 401),
    ),
    ("DELETE", "/v1/session", None, dict.fromkeys(ROLES, 204)),
    (
        "GET",
        "/docs",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    (
        "GET",
        "/openapi.json",
        None,
        dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
    ),
    # the dashboard's views are the same page for everyone (and open without a key): what
    # each caller sees on them comes from the rows above, so a view of another department's
    # or hospital's case is the page, whose data endpoints answer 404
    *[
        (
            "GET",
            view,
            None,
            dict(his_h1=200, head_card=200, office_h1=200, office_all=200, admin=200),
        )
        for view in (
            "/",
            "/login",
            "/hospitals/H001/departments/CARD",
            "/hospitals/H001/departments/SURG",
            "/hospitals/H001/cases/C2",
            "/hospitals/H002/cases/C1",
        )
    ],
]
# the live feed is checked by what it delivers (test_the_stream_carries_only_the_callers_alerts)
STREAMS = {"/v1/alerts/stream"}


def _template(path: str) -> str:
    path = path.split("?")[0]
    path = re.sub(r"/drg-catalogues/\d+", "/drg-catalogues/{catalogue_id}", path)
    path = re.sub(r"\{(red|under_review):[^}]+\}", "{alert_id}", path)
    for concrete, name in (("H001", "{hospital_id}"), ("H002", "{hospital_id}")):
        path = path.replace(f"/hospitals/{concrete}", f"/hospitals/{name}")
    for concrete, name in (
        ("sub_0000000000", "{subscription_id}"),
        ("msg_0000000000", "{delivery_id}"),
        ("idn_0000000000000000", "{identity_id}"),
    ):
        path = path.replace(f"/{concrete}", f"/{name}")
    for concrete, name in (
        ("C1", "{case_id}"),
        ("C2", "{case_id}"),
        ("FM15", "{drg_code}"),
        ("C-STENT-IMP", "{item_code}"),
        ("CARD", "{department}"),
        ("SURG", "{department}"),
        ("2026-12", "{period}"),
        ("repeat-exam", "{rule_id}"),
        ("matrix-rule", "{rule_id}"),
        ("matrix-wide", "{rule_id}"),
        ("no-such-rule", "{rule_id}"),
    ):
        path = path.replace(f"/{concrete}", f"/{name}")
    return path


def operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every operation the app serves, from its OpenAPI document (health and metrics aside)."""
    return (
        {
            (method.upper(), path)
            for path, methods in app.openapi()["paths"].items()
            if path not in OPEN_PATHS
            for method in methods
        }
        | {("GET", "/docs"), ("GET", "/openapi.json")}
        | {("GET", view) for view in PAGE_PATHS}
    )


def test_the_matrix_covers_every_endpoint() -> None:
    app = create_app(ApiSettings(database_url="sqlite+aiosqlite://"), connect_broker=False)
    served = {(method, path) for method, path in operations(app) if path not in STREAMS}
    assert len(served) >= 10
    covered = {(method, _template(path)) for method, path, _, _ in MATRIX}
    missing = served - covered
    assert not missing, f"endpoints with no row in the access matrix: {sorted(missing)}"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    MATRIX,
    ids=[f"{m} {p} #{i}" for i, (m, p, _, _) in enumerate(MATRIX)],
)
async def test_each_role_against_each_endpoint(
    api: Api,
    callers: dict[str, Caller],
    method: str,
    path: str,
    body: Any,
    expected: dict[str, int],
) -> None:
    got = {}
    for name in ROLES:
        # each caller posts its own event ids, so an accepted post is not a duplicate
        # and acts on an alert nobody has acted on yet (or one waiting for review)
        concrete = await _alert_path(api, callers["admin"], path)
        if isinstance(body, str):  # HL7 v2
            response = await api.client.request(
                method,
                concrete,
                content=body.replace("m-", f"{name}-"),
                headers={**callers[name].headers, "Content-Type": "x-application/hl7-v2+er7"},
            )
        else:
            payload = orjson.loads(orjson.dumps(body).replace(b'"m-', f'"{name}-'.encode()))
            response = await api.client.request(
                method, concrete, json=payload, headers=callers[name].headers
            )
        got[name] = response.status_code
        if response.status_code in (403, 404):
            refusal = response.json()  # FHIR's refusals are OperationOutcomes
            assert refusal.get("detail") or refusal["issue"][0]["diagnostics"], response.text
    assert got == expected


async def _alert_path(api: Api, admin: Caller, path: str) -> str:
    """Put the case's red alert in the state a row names, with no earlier actions."""
    found = re.search(r"\{(red|under_review):(\w+):(\w+)\}", path)
    if found is None:
        return path
    state, hospital_id, case_id = found.groups()
    async with api.engine.begin() as connection:
        await connection.execute(text("DELETE FROM alert_actions"))
    alert_id = await api.scalar(
        "SELECT alert_id FROM alerts WHERE hospital_id = :h AND case_id = :c AND level = 'red'",
        h=hospital_id,
        c=case_id,
    )
    if state == "under_review":
        submitted = await api.client.post(
            f"/v1/alerts/{alert_id}/resolve",
            json={"reason": "new_technique", "note": "first TAVI of the department"},
            headers=admin.headers,
        )
        assert submitted.json()["status"] == "under_review", submitted.text
    return path.replace(found.group(0), alert_id)


async def test_lists_hold_only_what_the_caller_may_see(
    api: Api, callers: dict[str, Caller]
) -> None:
    async def seen(name: str, path: str, **filters: str) -> set[tuple[str, str, str | None]]:
        response = await api.client.get(
            path, params={"limit": 500, **filters}, headers=callers[name].headers
        )
        assert response.status_code == 200, response.text
        return {
            (item["hospital_id"], item["case_id"], item["department"])
            for item in response.json()["items"]
        }

    everything = {("H001", "C1", "CARD"), ("H001", "C2", "SURG"), ("H002", "C1", "CARD")}
    h001 = {row for row in everything if row[0] == "H001"}
    assert await seen("admin", "/v1/alerts") == everything
    assert await seen("office_all", "/v1/alerts") == everything
    assert await seen("office_h1", "/v1/alerts") == h001
    assert await seen("his_h1", "/v1/alerts") == h001
    assert await seen("head_card", "/v1/alerts") == {("H001", "C1", "CARD")}
    # asking for another department or hospital by filter gives nothing, not more
    assert await seen("head_card", "/v1/alerts", department="SURG") == set()
    assert await seen("head_card", "/v1/alerts", hospital_id="H002") == set()
    assert await seen("office_h1", "/v1/hospitals/H001/cases") == h001
    assert await seen("head_card", "/v1/hospitals/H001/cases") == {("H001", "C1", "CARD")}
    assert await seen("head_card", "/v1/hospitals/H001/cases", order="ratio") == {
        ("H001", "C1", "CARD")
    }
    summaries = {
        name: (
            await api.client.get("/v1/hospitals/H001/open-cases/summary", headers=c.headers)
        ).json()
        for name, c in callers.items()
        if name != "office_all"
    }
    assert [d["department"] for d in summaries["head_card"]["departments"]] == ["CARD"]
    assert sorted(d["department"] for d in summaries["office_h1"]["departments"]) == [
        "CARD",
        "SURG",
    ]
    assert (
        await api.client.get(
            "/v1/hospitals/H001/open-cases/summary",
            params={"department": "SURG"},
            headers=callers["head_card"].headers,
        )
    ).json()["departments"] == []
    counts = {
        name: len((await api.client.get("/v1/alerts", headers=c.headers)).json()["items"])
        for name, c in callers.items()
    }
    assert counts == dict(his_h1=8, head_card=4, office_h1=8, office_all=12, admin=12)


async def test_a_dead_letter_of_another_hospital_is_not_listed(
    api: Api, callers: dict[str, Caller]
) -> None:
    bad = {"events": [_event("d1", "H001") | {"amount": "x"}, _event("d2", "H002")]}
    refused = await api.client.post("/v1/events", json=bad, headers=callers["admin"].headers)
    assert refused.status_code == 202, refused.text
    for name, hospitals in (("his_h1", {"H001"}), ("admin", {"H001"})):
        listed = await api.client.get("/v1/dead-letters", headers=callers[name].headers)
        assert {item["hospital_id"] for item in listed.json()["items"]} == hospitals
    other = await api.client.post(
        "/v1/events",
        json={"events": [_event("d3", "H002") | {"amount": "x"}, _event("d4", "H002")]},
        headers=callers["admin"].headers,
    )
    assert other.status_code == 202
    listed = await api.client.get("/v1/dead-letters", headers=callers["his_h1"].headers)
    assert {item["hospital_id"] for item in listed.json()["items"]} == {"H001"}


async def test_wrong_revoked_and_disabled_keys_are_refused_even_in_embedded_mode(
    api: Api, callers: dict[str, Caller]
) -> None:
    assert (await api.client.get("/v1/alerts")).status_code == 200  # no key: local admin
    async with api.sessions() as db_session:
        _, spare = await access_service.create_identity(
            db_session=db_session,
            name="leaver",
            role="insurance_office",
            hospitals=["H001"],
            departments=[],
        )
        await access_service.disable(db_session=db_session, name_or_id="leaver")
        await db_session.commit()
    for key in ("dwk_not-a-key-anyone-was-given", spare, callers["admin"].key + "x"):
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
            response = await api.client.get("/v1/alerts", headers=headers)
            assert response.status_code == 401, (key, headers)
            assert response.headers["www-authenticate"] == "Bearer"


async def test_keys_are_stored_as_digests_only(api: Api, callers: dict[str, Caller]) -> None:
    stored = [row[0] for row in await api.rows("SELECT key_digest FROM api_keys")]
    assert len(stored) == len(callers)
    for caller in callers.values():
        assert caller.key.startswith("dwk_") and len(caller.key) >= 40
        assert caller.key not in stored
        assert access_service.key_digest(caller.key) in stored


async def _stream(
    base: str, headers: dict[str, str], want: int, into: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Read the live feed from the start until `want` alerts came (or be cancelled)."""
    alerts = [] if into is None else into
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/v1/alerts/stream", headers=headers | {"Last-Event-ID": "0"}) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                alerts.append(orjson.loads(line[6:]))
                if len(alerts) >= want:
                    break
    return alerts


async def test_the_stream_carries_only_the_callers_alerts(
    api: Api, callers: dict[str, Caller]
) -> None:
    async with serving(api.app) as base:
        head: list[dict[str, Any]] = []
        # the department head's stream gets its four, and nothing more while others get theirs
        reading = asyncio.create_task(_stream(base, callers["head_card"].headers, 5, head))
        office = await asyncio.wait_for(_stream(base, callers["office_h1"].headers, 8), 10)
        admin = await asyncio.wait_for(_stream(base, callers["admin"].headers, 12), 10)
        await asyncio.sleep(1.0)
        assert not reading.done()
        reading.cancel()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            wrong = await client.get(
                "/v1/alerts/stream", headers={"Authorization": "Bearer dwk_wrong-key-0000000000"}
            )
    assert wrong.status_code == 401
    assert len(head) == 4
    assert {(a["hospital_id"], a["department"]) for a in head} == {("H001", "CARD")}
    assert {(a["hospital_id"], a["department"]) for a in office} == {
        ("H001", "CARD"),
        ("H001", "SURG"),
    }
    assert len({a["alert_id"] for a in admin}) == 12


@pytest.fixture
async def production(postgres_url: str, pg_engine: AsyncEngine) -> AsyncIterator[Api]:
    settings = ApiSettings(mode="production", database_url=postgres_url, api_keys=OPERATOR_KEY)
    app = create_app(settings, connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(app=app, client=client, engine=app.state.engine, sessions=app.state.sessions)


async def test_production_refuses_every_endpoint_without_a_key(production: Api) -> None:
    # the dashboard's views are open: the page holds no data (test_dashboard_page.py)
    routes = {
        (method, path) for method, path in operations(production.app) if path not in PAGE_PATHS
    }
    assert len(routes) >= 10
    # but the session endpoint, where a page asks whether it must sign in, and signs in
    answers_anyone = {("GET", SESSION_PATH): 200, ("POST", SESSION_PATH): 422}
    answers_anyone[("DELETE", SESSION_PATH)] = 204
    assert set(answers_anyone) <= routes
    for method, path in routes:
        concrete = path.replace("{hospital_id}", "H001").replace("{case_id}", "C1")
        response = await production.client.request(method, concrete.replace("{drg_code}", "X"))
        assert response.status_code == answers_anyone.get((method, path), 401), (method, path)


async def test_production_scopes_identities_like_embedded_mode(production: Api) -> None:
    await write(production, build())
    callers = await _identities(production)
    case = "/v1/hospitals/H001/cases/C2"
    head = await production.client.get(case, headers=callers["head_card"].headers)
    office = await production.client.get(case, headers=callers["office_h1"].headers)
    operator = await production.client.get(
        "/v1/hospitals/H002/cases/C1", headers={"X-API-Key": OPERATOR_KEY}
    )
    assert (head.status_code, office.status_code, operator.status_code) == (404, 200, 200)


async def test_a_posting_for_another_hospital_is_kept_where_only_all_hospital_callers_see_it(
    api: Api, callers: dict[str, Caller]
) -> None:
    foreign = {"events": [_event("f1", "H001"), _event("f2", "H002")]}
    refused = await api.client.post("/v1/events", json=foreign, headers=callers["his_h1"].headers)
    assert refused.status_code == 403, refused.text
    assert await api.scalar("SELECT count(*) FROM ingest_ledger") == 0

    async def letters(name: str) -> list[dict[str, Any]]:
        listed = await api.client.get("/v1/dead-letters", headers=callers[name].headers)
        assert listed.status_code == 200, listed.text
        items: list[dict[str, Any]] = listed.json()["items"]
        return items

    (kept,) = await letters("admin")
    assert kept["hospital_id"] is None and kept["reason"].startswith("forbidden:")
    assert "H002" in kept["reason"] and '"f2"' in kept["payload"]
    assert await letters("office_all") == [kept]
    assert await letters("his_h1") == [] and await letters("office_h1") == []


async def test_reference_data_of_another_hospital_is_neither_seen_nor_changed(
    api: Api, callers: dict[str, Caller]
) -> None:
    admin = callers["admin"].headers
    ids = {}
    for hospital in (None, "H001", "H002"):
        body = {**CATALOGUE, "name": f"for {hospital or 'all'}"}
        if hospital:
            body["hospital_id"] = hospital
        created = await api.client.post("/v1/drg-catalogues", json=body, headers=admin)
        assert created.status_code == 201, created.text
        ids[hospital] = created.json()["catalogue_id"]
    for hospital in ("*", "H001", "H002"):
        thresholds = {**THRESHOLDS, "hospital_id": hospital}
        assert (
            await api.client.put("/v1/alert-thresholds", json=thresholds, headers=admin)
        ).status_code == 200

    async def listed(name: str, path: str, field: str) -> set[Any]:
        response = await api.client.get(path, headers=callers[name].headers)
        assert response.status_code == 200, response.text
        return {item[field] for item in response.json()["items"]}

    for name in ("his_h1", "head_card", "office_h1"):
        assert await listed(name, "/v1/drg-catalogues", "catalogue_id") == {
            ids[None],
            ids["H001"],
        }
        assert await listed(name, "/v1/alert-thresholds", "hospital_id") == {"*", "H001"}
        hidden = await api.client.get(
            f"/v1/drg-catalogues/{ids['H002']}", headers=callers[name].headers
        )
        assert hidden.status_code == 404
        current = await api.client.get(
            "/v1/drg-catalogues/current/groups/FM15",
            params={"hospital_id": "H002"},
            headers=callers[name].headers,
        )
        assert current.status_code == 404
    assert len(await listed("office_all", "/v1/drg-catalogues", "catalogue_id")) == 3

    office_h1 = callers["office_h1"].headers
    for hospital, status in ((None, 403), ("H002", 404), ("H001", 200)):
        response = await api.client.post(
            f"/v1/drg-catalogues/{ids[hospital]}/withdraw", json={}, headers=office_h1
        )
        assert response.status_code == status, (hospital, response.text)
    withdrawn = await api.scalar(
        "SELECT count(*) FROM drg_catalogues WHERE withdrawn_at IS NOT NULL"
    )
    assert withdrawn == 1
    by = await api.scalar("SELECT withdrawn_by FROM drg_catalogues WHERE withdrawn_at IS NOT NULL")
    assert by == "office_h1"


async def test_rules_of_another_hospital_are_neither_seen_nor_switched(
    api: Api, callers: dict[str, Caller]
) -> None:
    admin = callers["admin"].headers
    for hospital in ("H001", "H002"):
        switched = await api.client.put(
            "/v1/rules/repeat-exam/switches",
            json={"hospital_id": hospital, "enabled": False},
            headers=admin,
        )
        assert switched.status_code == 200, switched.text

    async def switches(name: str) -> set[str]:
        listed = await api.client.get("/v1/rules", headers=callers[name].headers)
        assert listed.status_code == 200, listed.text
        [rule] = [item for item in listed.json()["items"] if item["rule_id"] == "repeat-exam"]
        detail = await api.client.get("/v1/rules/repeat-exam", headers=callers[name].headers)
        history = {switch["hospital_id"] for switch in detail.json()["switch_history"]}
        shown = {switch["hospital_id"] for switch in rule["switches"]}
        assert history == shown
        return shown

    assert await switches("head_card") == {"H001"}
    assert await switches("office_h1") == {"H001"}
    assert await switches("office_all") == {"H001", "H002"}

    async def checked(name: str) -> int:
        trial = {"rule": {**MATRIX_RULE["rule"], "hospitals": []}}
        ran = await api.client.post("/v1/rules/dry-run", json=trial, headers=callers[name].headers)
        assert ran.status_code == 200, ran.text
        return int(ran.json()["cases_checked"])

    # the open cases of the caller's hospitals: H001/C1 and C2; H002/C1 too for every hospital
    assert (await checked("office_h1"), await checked("office_all")) == (2, 3)
    foreign = await api.client.post(
        "/v1/rules/dry-run",
        json={"rule": MATRIX_RULE["rule"], "hospital_id": "H002"},
        headers=callers["office_h1"].headers,
    )
    assert (foreign.status_code, foreign.json()["cases_checked"]) == (200, 0)
