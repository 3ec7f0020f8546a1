"""/healthz, /readyz, /metrics and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from services.alerting.projector import beat
from tests.api.conftest import Api
from tests.api.helpers import charge


async def test_healthz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_without_worker_is_503_naming_the_worker(api: Api) -> None:
    response = await api.client.get("/readyz")

    assert response.status_code == 503, response.text
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["worker"] != "ok"
    assert "worker" in body["checks"]["worker"]
    assert body["checks"]["broker"] != "ok"


async def test_readyz_with_ready_worker_but_no_broker_is_503_naming_the_broker(api: Api) -> None:
    await beat(api.sessions, api.engine, worker_id="w-1", ready=True, partitions=8)
    assert await api.scalar("SELECT count(*) FROM worker_heartbeats WHERE ready") == 1

    response = await api.client.get("/readyz")

    assert response.status_code == 503, response.text
    checks = response.json()["checks"]
    assert checks["worker"] == "ok"
    assert checks["database"] == "ok"
    assert checks["broker"] == "not connected"
    assert [name for name, value in checks.items() if value != "ok"] == ["broker"]


async def test_readyz_is_200_when_every_check_passes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The positive control: the 503s above come from the failing check alone."""
    await beat(api.sessions, api.engine, worker_id="w-1", ready=True, partitions=8)
    monkeypatch.setattr(api.app.state.publisher, "started", True)
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ready": True,
        "checks": {"database": "ok", "worker": "ok", "broker": "ok"},
    }


@pytest.mark.parametrize("stale", ["not ready", "old"])
async def test_readyz_ignores_unready_or_stale_heartbeats(
    api: Api, monkeypatch: pytest.MonkeyPatch, stale: str
) -> None:
    monkeypatch.setattr(api.app.state.publisher, "started", True)
    await beat(api.sessions, api.engine, worker_id="w-1", ready=stale == "old", partitions=0)
    if stale == "old":
        async with api.engine.begin() as connection:
            await connection.execute(
                text("UPDATE worker_heartbeats SET updated_at = :t"),
                {"t": datetime.now(UTC) - timedelta(minutes=5)},
            )
    response = await api.client.get("/readyz")
    assert response.status_code == 503, response.text
    checks = response.json()["checks"]
    assert checks["worker"] != "ok" and checks["broker"] == "ok"


def ingested(metrics_text: str, source: str = "json") -> dict[str, float]:
    """Events ingested from `source` (POST /v1/events: json), by status."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "drgwatch_events_ingested":
            return {
                s.labels["status"]: s.value
                for s in family.samples
                if s.name == "drgwatch_events_ingested_total" and s.labels["source"] == source
            }
    return {}


def refused(metrics_text: str, source: str = "json") -> dict[str, float]:
    """Events refused from `source`, by reason."""
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "drgwatch_events_rejected_total" and sample.labels["source"] == source
    }


async def test_metrics_count_ingested_events(api: Api) -> None:
    text_before = (await api.client.get("/metrics")).text
    before, refused_before = ingested(text_before), refused(text_before)
    events = {"events": [charge("m-1"), charge("m-1"), charge("m-2", amount="9.99"), charge("m-3")]}
    assert (await api.client.post("/v1/events", json=events)).status_code == 202

    response = await api.client.get("/metrics", follow_redirects=True)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "drgwatch_events_ingested_total" in response.text
    after = ingested(response.text)
    assert after["accepted"] - before.get("accepted", 0) == 2
    assert after["duplicate"] - before.get("duplicate", 0) == 1
    assert after["rejected"] - before.get("rejected", 0) == 1
    # the event refused within an accepted batch, for its contract
    assert refused(response.text)["invalid"] - refused_before.get("invalid", 0) == 1
    # a body that is not JSON at all, refused as a whole
    not_json = {"content-type": "application/json"}
    answer = await api.client.post("/v1/events", content=b"{no", headers=not_json)
    assert answer.status_code == 422, answer.text
    text_after = (await api.client.get("/metrics")).text
    assert refused(text_after)["invalid"] - refused_before.get("invalid", 0) == 2
    assert "drgwatch_http_request_seconds" in response.text


METRICS_REDIRECT = (
    "services/api/app.py mounts prometheus make_asgi_app() at /metrics, so GET /metrics "
    "answers 307 -> /metrics/ instead of the metrics (DESIGN.md names GET /metrics; "
    "scrapers and probes that do not follow redirects, or an ingress that rewrites the "
    "host, see no metrics)"
)


async def test_metrics_served_at_the_exact_path(api: Api) -> None:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert "drgwatch_events_ingested_total" in response.text


# DESIGN.md "Public HTTP surface (v1)": path -> methods
DESIGN_SURFACE = {
    "/v1/drg-catalogues": {"post"},
    "/v1/drg-catalogues/current/groups/{drg_code}": {"get"},
    "/v1/events": {"post"},
    "/v1/hospitals/{hospital_id}/cases/{case_id}": {"get"},
    "/v1/hospitals/{hospital_id}/cases": {"get"},
    "/v1/alerts": {"get"},
    "/v1/alerts/stream": {"get"},
    "/v1/hospitals/{hospital_id}/cases/{case_id}/precheck": {"post"},
    "/healthz": {"get"},
    "/readyz": {"get"},
}
# mounted or served by FastAPI itself: not operations of the document
OUTSIDE_OPENAPI = {"/metrics", "/docs"}


def concrete(path: str) -> str:
    return (
        path.replace("{hospital_id}", "H001")
        .replace("{case_id}", "C1")
        .replace("{drg_code}", "FM15")
    )


async def served_methods(api: Api, path: str) -> set[str] | None:
    """The methods the app serves on a path (from a 405's Allow), or None if it has none.

    Asked with a method no DESIGN path uses, so that nothing runs (the SSE feed would
    never end), and through the app itself so included routers are all seen.
    """
    response = await api.client.request("PATCH", concrete(path))
    if response.status_code == 404:
        return None
    assert response.status_code == 405, (path, response.status_code)
    return {m.strip().lower() for m in response.headers["allow"].split(",")}


async def app_routes(api: Api) -> dict[str, set[str]]:
    routes = {}
    for path in DESIGN_SURFACE:
        methods = await served_methods(api, path)
        if methods is not None:
            routes[path] = methods
    return routes


async def test_openapi_lists_every_design_path_the_app_serves(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    served = await app_routes(api)

    present = {path: methods for path, methods in DESIGN_SURFACE.items() if path in served}
    # everything but the precheck is served today (see the report)
    assert set(DESIGN_SURFACE) - set(present) <= {
        "/v1/hospitals/{hospital_id}/cases/{case_id}/precheck"
    }
    for path, methods in present.items():
        assert methods <= served[path], (path, served[path])
        assert path in paths, f"{path} missing from /openapi.json"
        assert methods <= set(paths[path]), (path, set(paths[path]))
    # the ingest body is documented as one event or a batch
    body = paths["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert len(body["oneOf"]) == 2
    assert paths["/v1/events"]["post"]["responses"].keys() >= {"202", "413", "422", "503"}


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


DANGLING_EVENT_REF = (
    "services/ingest/router.py: the POST /v1/events requestBody refers to "
    "#/components/schemas/Event, but _event_schema (built from EVENT_ADAPTER) is never "
    "added to the document's components, so the event contract is a dangling $ref in "
    "/openapi.json (Swagger UI cannot render it; generated clients fail)"
)


async def test_every_openapi_reference_resolves(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    defined = {f"#/components/schemas/{name}" for name in document["components"]["schemas"]}
    assert refs(document) - defined == set()


async def test_docs_and_other_operational_paths_answer(api: Api) -> None:
    assert (await api.client.get("/docs")).status_code == 200
    for path in OUTSIDE_OPENAPI:
        response = await api.client.get(path, follow_redirects=True)
        assert response.status_code == 200, path


PRECHECK_MISSING = (
    "DESIGN.md lists POST /v1/hospitals/{hospital_id}/cases/{case_id}/precheck; no router "
    "in services/api serves it"
)


async def test_precheck_path_exists(api: Api) -> None:
    assert await served_methods(api, "/v1/hospitals/{hospital_id}/cases/{case_id}/precheck") == {
        "post"
    }
