"""Every route refuses an oversized body early with 413, declared or streamed.

The bodies are generators that count what the app pulled from them: a refusal that
comes only after reading 200 MB would still answer 413, but not early.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.api.guard import BODY_MEDIA_TYPES
from services.api.limits import BODY_LIMITS, DEFAULT_BODY_LIMIT, body_limit
from tests.api.helpers import charge
from tests.hostile.conftest import Api, concrete

CHUNK = 64 * 1024
HUGE = 200 * 1024 * 1024
JSON = {"content-type": "application/json"}
UNDOCUMENTED = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/metrics")


class CountedBody:
    """A body of `total` bytes handed out a chunk at a time, counting what was taken."""

    def __init__(self, total: int, *, prefix: bytes = b"") -> None:
        self.total = total
        self.prefix = prefix
        self.taken = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.prefix:
            self.taken += len(self.prefix)
            yield self.prefix
        while self.taken < self.total:
            self.taken += CHUNK
            yield b"A" * CHUNK


def operations(api: Api, *, with_body_only: bool) -> list[tuple[str, str]]:
    """Every documented operation (those taking a body, or all with the undocumented
    routes: the OpenAPI document and its pages, /metrics)."""
    found = [
        (method.upper(), path)
        for path, spec in api.app.openapi()["paths"].items()
        for method, operation in spec.items()
        if not with_body_only or "requestBody" in operation
    ]
    if not with_body_only:
        found += [("GET", path) for path in UNDOCUMENTED]
        found += [("HEAD", "/healthz"), ("OPTIONS", "/v1/events"), ("DELETE", "/v1/alerts")]
    return found


def check_413(response: Any, limit: int) -> None:
    assert response.status_code == 413, response.text[:300]
    body = response.json()
    if body.get("resourceType") == "OperationOutcome":  # POST /v1/fhir answers in FHIR
        [issue] = body["issue"]
        assert issue["code"] == "too-costly" and str(limit) in issue["diagnostics"], body
        return
    assert str(limit) in body["detail"]
    assert body["errors"][0]["field"] == "body", body


async def test_a_declared_oversized_body_is_refused_unread_on_every_route(api: Api) -> None:
    checked = 0
    for method, template in operations(api, with_body_only=False):
        body = CountedBody(HUGE)
        media = sorted(BODY_MEDIA_TYPES.get(template, {JSON["content-type"]}))[0]
        headers = {"content-type": media, "content-length": str(HUGE)}
        response = await api.client.request(
            method, concrete(template), content=body.chunks(), headers=headers
        )
        assert response.status_code == 413, (method, template, response.status_code)
        if method != "HEAD":
            check_413(response, body_limit(template))
        assert body.taken <= CHUNK, (method, template, body.taken)
        checked += 1
    assert checked >= 30


async def test_a_streamed_oversized_body_is_refused_early_on_every_route_taking_one(
    api: Api,
) -> None:
    taking = operations(api, with_body_only=True)
    assert ("POST", "/v1/alerts/{alert_id}/ack") in taking
    assert ("POST", "/v1/subscriptions") in taking
    for method, template in taking:
        limit = body_limit(template)
        body = CountedBody(HUGE, prefix=b'{"note": "')
        # in a media type the route takes, so that the size is what refuses it
        media = sorted(BODY_MEDIA_TYPES.get(template, {JSON["content-type"]}))[0]
        response = await api.client.request(
            method, concrete(template), content=body.chunks(), headers={"content-type": media}
        )
        check_413(response, limit)
        assert body.taken <= limit + 2 * CHUNK, (method, template, body.taken)


@pytest.mark.parametrize(
    ("method", "template", "size"),
    [
        ("POST", "/v1/alerts/{alert_id}/ack", DEFAULT_BODY_LIMIT - 100),
        ("POST", "/v1/subscriptions", DEFAULT_BODY_LIMIT - 100),
        ("POST", "/v1/hospitals/{hospital_id}/cases/{case_id}/precheck", 300_000),
        ("POST", "/v1/drg-catalogues", 2_000_000),
        ("POST", "/v1/chargemasters", 2_000_000),
    ],
)
async def test_a_body_within_its_routes_limit_is_read(
    api: Api, method: str, template: str, size: int
) -> None:
    padding = "x" * (size - 20)
    response = await api.client.request(
        method, concrete(template), content=f'{{"note": "{padding}"}}'.encode(), headers=JSON
    )
    assert response.status_code != 413
    assert response.status_code in (404, 422), response.text[:200]


async def test_events_keep_their_own_limit_and_dead_letter() -> None:
    assert body_limit("/v1/events") == 5 * 1024 * 1024
    assert body_limit("/v1/alerts/{alert_id}/ack") == DEFAULT_BODY_LIMIT == 64 * 1024


async def test_a_streamed_oversized_event_submission_is_kept_as_a_dead_letter(api: Api) -> None:
    limit = body_limit("/v1/events")
    body = CountedBody(HUGE, prefix=b'{"events": [')
    response = await api.client.post("/v1/events", content=body.chunks(), headers=JSON)
    assert response.status_code == 413
    assert body.taken <= limit + 2 * CHUNK
    letters = await api.rows("SELECT reason FROM dead_letters")
    assert len(letters) == 1 and "large" in letters[0].reason


async def test_a_streamed_oversized_fhir_submission_is_kept_as_a_dead_letter(api: Api) -> None:
    limit = body_limit("/v1/fhir")
    body = CountedBody(HUGE, prefix=b'{"resourceType": "Bundle", "type": "batch", "entry": [')
    response = await api.client.post(
        "/v1/fhir", content=body.chunks(), headers={"Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 413
    check_413(response, limit)
    assert body.taken <= limit + 2 * CHUNK
    letters = await api.rows("SELECT reason, payload FROM dead_letters")
    assert len(letters) == 1 and "large" in letters[0].reason
    assert letters[0].payload.startswith('{"resourceType": "Bundle"')


async def test_every_named_limit_is_a_route_of_the_app(api: Api) -> None:
    assert set(BODY_LIMITS) <= set(api.app.openapi()["paths"])


async def test_a_small_event_is_still_accepted(api: Api) -> None:
    response = await api.client.post("/v1/events", json=charge("LIMIT-OK"))
    assert response.status_code == 202, response.text
