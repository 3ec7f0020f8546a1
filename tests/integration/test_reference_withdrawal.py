"""Reference data on the whole stack: an amendment and two withdrawals move an open case's
standard and level through the worker (reference version, reload, reprice), and each
answer says beforehand what it does to that case."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.harness import Stack, running_stack
from tests.integration.test_pipeline import admitted, line

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), postgres_url) as running:
        yield running


def catalogue(hospital: str, weight: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{hospital} weight {weight}",
        "effective_from": "2026-01-01",
        "hospital_id": hospital,
        "base_rates": {"employee": "1000.00"},
        "groups": [{"drg_code": "QX99", "name": "Local test group", "weight": weight}],
        **extra,
    }


def post(stack: Stack, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = httpx.post(f"{stack.url}{path}", json=body, timeout=30)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_amend_and_withdraw_reprice_an_open_case(stack: Stack) -> None:
    h, c = f"H{uuid.uuid4().hex[:6]}", "C1"
    first = post(stack, "/v1/drg-catalogues", catalogue(h, "1.0000"), 201)
    stack.post([admitted(h, c, "a", drg="QX99"), line(h, c, "b", "950.00")])
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("level") == "yellow", timeout=30)

    heavier = catalogue(h, "2.0000", mode="amend")
    dry = post(stack, "/v1/drg-catalogues", {**heavier, "dry_run": True}, 200)
    assert dry["impact"] == {
        "open_cases": 1,
        "repriced": 1,
        "standard_changed": 1,
        "unpriced": 0,
        "newly_unpriced": 0,
    }
    amended = post(stack, "/v1/drg-catalogues", heavier, 201)
    assert amended["based_on"]["catalogue_id"] == first["catalogue_id"]
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("standard_cost") == "2000.00", timeout=30)
    assert (stack.case(h, c) or {})["level"] == "none"

    withdrawn = post(stack, f"/v1/drg-catalogues/{amended['catalogue_id']}/withdraw", {}, 200)
    assert withdrawn["in_force_today"]["catalogue_id"] == first["catalogue_id"]
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("standard_cost") == "1000.00", timeout=30)
    assert (stack.case(h, c) or {})["level"] == "yellow"

    # the hospital's own catalogue gone, the sample prices it: it has no QX99
    last = post(stack, f"/v1/drg-catalogues/{first['catalogue_id']}/withdraw", {}, 200)
    assert last["in_force_today"]["sample"] is True
    assert last["impact"]["newly_unpriced"] == 1
    stack.wait_for(lambda: (stack.case(h, c) or {}).get("level") == "unpriced", timeout=30)
