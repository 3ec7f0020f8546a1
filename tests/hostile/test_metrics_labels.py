"""/metrics stays bounded whatever unauthenticated callers send: label values come only
from the methods HTTP defines and the app's own routes, never from the request."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.hostile.conftest import Api

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def request_label_sets() -> set[tuple[str, str, str]]:
    found = set()
    for metric in REGISTRY.collect():
        if metric.name != "drgwatch_http_request_seconds":
            continue
        for sample in metric.samples:
            labels = sample.labels
            found.add((labels["method"], labels["route"], labels["status"]))
    return found


async def test_invented_methods_and_paths_add_no_label_values(api: Api) -> None:
    await api.client.get("/healthz")
    await api.client.request("BREW", "/healthz")
    before = request_label_sets()
    metrics_before = len((await api.client.get("/metrics")).content)

    for number in range(300):
        await api.client.request(f"M{number}X", "/healthz")
        await api.client.get(f"/no/such/path/{number}")
    await api.client.request("A" * 60_000, "/v1/alerts")

    after = request_label_sets()
    assert {method for method, _, _ in after} <= KNOWN_METHODS, sorted(after)[:5]
    routes = {route for _, route, _ in after}
    assert not any("/no/such/path/" in route for route in routes)
    new = after - before
    assert len(new) <= 4, sorted(new)  # at most: other on two routes, GET on unmatched
    metrics_after = len((await api.client.get("/metrics")).content)
    assert metrics_after < metrics_before + 20_000, (metrics_before, metrics_after)
