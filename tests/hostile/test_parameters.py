"""Path, query and header parameters that cannot be what they name are refused with a 4xx
naming them, never a 500 (PostgreSQL text cannot hold NUL; a year-1 time overflows UTC;
a stream position must fit a 64-bit integer)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from tests.api.helpers import HOSPITAL, charge
from tests.hostile.conftest import Api, concrete

ID_PARAMETERS = {"hospital_id", "case_id", "department", "alert_id", "drg_code"}
# raw (already percent-encoded) values that no id may hold
HOSTILE_VALUES = {
    "nul": "C%00",
    "only nul": "%00",
    "newline": "C1%0A",
    "escape": "%1B%5B31m",
    "delete": "C%7F1",
    "slash": "OTHER%2FC9",
    "space": "C%201",
    "latin1": "C%E91",
    "rtl override": "C1%E2%80%AEgpj",
}
# the live stream never ends once it starts: a refusal must come at once
ANSWER_SECONDS = 10.0


# reference data routes are being changed elsewhere; their parameters follow later
def id_parameters(api: Api) -> list[Any]:
    found = []
    for path, operations in api.app.openapi()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                if name in ID_PARAMETERS and parameter["in"] in ("path", "query"):
                    found.append((method.upper(), path, name, parameter["in"]))
    return found


def url_of(path: str, name: str, where: str, value: str) -> str:
    if where == "path":
        return concrete(path, **{name: value})
    return f"{concrete(path)}?{name}={value}"


def named(body: dict[str, Any], name: str) -> bool:
    return any(name in error["field"].split(".") for error in body.get("errors", []))


async def test_every_id_parameter_refuses_what_no_id_may_hold(api: Api) -> None:
    parameters = id_parameters(api)
    assert len(parameters) >= 12, parameters
    failures = []
    for method, path, name, where in parameters:
        for label, value in HOSTILE_VALUES.items():
            if where == "path" and label == "slash":
                continue  # a decoded slash leaves the route: 404 below
            response = await asyncio.wait_for(
                api.client.request(
                    method, url_of(path, name, where, value), json={} if method != "GET" else None
                ),
                ANSWER_SECONDS,
            )
            body = response.json()
            if response.status_code != 422 or not named(body, name):
                failures.append((method, path, name, label, response.status_code, body))
    assert not failures, failures[:5]


async def test_reference_parameters_refuse_nul(api: Api) -> None:
    response = await api.client.get("/v1/drg-catalogues/current/groups/FM15?hospital_id=%00")
    assert response.status_code == 422


async def test_threshold_ids_refuse_nul(api: Api) -> None:
    body = {"hospital_id": "H\u0000", "blue": "0.9", "yellow": "0.95", "red": "1"}
    response = await api.client.put("/v1/alert-thresholds", json=body)
    assert response.status_code == 422


async def test_a_slash_in_a_path_id_finds_no_route(api: Api) -> None:
    for url in (
        f"/v1/hospitals/{HOSPITAL}/cases/OTHER%2FC9",
        f"/v1/hospitals/{HOSPITAL}/cases/OTHER%2FC9/timeline",
    ):
        assert (await api.client.get(url)).status_code == 404


def cursor_of(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "url",
    [
        f"/v1/hospitals/{HOSPITAL}/cases",
        "/v1/alerts",
        "/v1/dead-letters",
        "/v1/subscriptions",
    ],
)
@pytest.mark.parametrize("key", [["\u0000"], ["C1\u0000"], ["\u001b[2J"]])
async def test_a_hand_made_cursor_holding_control_characters_is_refused(
    api: Api, url: str, key: list[Any]
) -> None:
    response = await api.client.get(url, params={"cursor": cursor_of(key)})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("cursor")


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2026-11-01T00:00:00",
    ],
)
async def test_since_that_cannot_be_stored_is_refused_naming_it(api: Api, since: str) -> None:
    response = await api.client.get("/v1/alerts", params={"since": since})
    assert response.status_code == 422, response.text
    assert named(response.json(), "since")


async def test_since_with_an_offset_is_read(api: Api) -> None:
    response = await api.client.get("/v1/alerts", params={"since": "0001-01-02T00:00:00+14:00"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "last_event_id",
    [
        b"\xb2",  # not UTF-8; read as latin-1 it is a superscript two, a "digit"
        "\u0663".encode(),  # an Arabic-Indic three, also a "digit"
        b"12\xff",
        b"9" * 20,
        b"9223372036854775808",  # one above the largest 64-bit integer
        b"-1",
        b"1e3",
    ],
)
async def test_a_last_event_id_the_stream_never_sent_is_refused_naming_it(
    api: Api, last_event_id: bytes
) -> None:
    response = await asyncio.wait_for(
        api.client.get("/v1/alerts/stream", headers={"Last-Event-ID": last_event_id}),
        ANSWER_SECONDS,
    )
    assert response.status_code == 422, response.text
    assert named(response.json(), "Last-Event-ID"), response.json()


async def test_an_event_with_a_slash_in_an_id_is_refused_naming_it(api: Api) -> None:
    for field, value in [("case_id", "OTHER/C9"), ("hospital_id", "H001/OTHER")]:
        response = await api.client.post("/v1/events", json=charge("SLASH-1", **{field: value}))
        assert response.status_code in (403, 422), response.text
        if response.status_code == 422:
            assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await api.scalar("SELECT count(*) FROM ingest_ledger") == 0
