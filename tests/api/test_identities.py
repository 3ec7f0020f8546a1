"""Identities over HTTP, for admins (what `drgwatch users --url` calls): keys shown once
and working at once, another key, disabling revokes every key, nobody else may."""

from __future__ import annotations

from typing import Any

from services.access import service as access_service
from tests.api.conftest import Api


async def create(api: Api, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.client.post("/v1/identities", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_an_admin_creates_lists_rekeys_and_disables_identities(api: Api) -> None:
    created = await create(
        api,
        {
            "name": "Dr Li, cardiology",
            "role": "department_head",
            "hospitals": ["H001"],
            "departments": ["CARD"],
        },
    )
    identity, first = created["identity"], created["api_key"]
    assert identity["id"].startswith("idn_") and identity["live_keys"] == 1
    assert (identity["role"], identity["hospitals"], identity["departments"]) == (
        "department_head",
        ["H001"],
        ["CARD"],
    )
    assert first.startswith("dwk_")
    stored = [row[0] for row in await api.rows("SELECT key_digest FROM api_keys")]
    assert stored == [access_service.key_digest(first)]  # the key itself is not kept
    assert (await api.client.get("/v1/alerts", headers=bearer(first))).status_code == 200
    # a department head manages nobody
    refused = await api.client.get("/v1/identities", headers=bearer(first))
    assert refused.status_code == 403, refused.text

    again = await api.client.post(f"/v1/identities/{identity['id']}/keys")
    assert again.status_code == 201, again.text
    second = again.json()["api_key"]
    assert second != first and again.json()["identity"]["live_keys"] == 2
    listed = (await api.client.get("/v1/identities")).json()
    assert [(i["name"], i["live_keys"]) for i in listed["items"]] == [("Dr Li, cardiology", 2)]

    disabled = await api.client.post(f"/v1/identities/{identity['id']}/disable")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled_at"] is not None
    async with api.sessions() as db_session:
        for key in (first, second):
            assert await access_service.principal_for_key(db_session=db_session, key=key) is None
    # a key never seen before by this process is refused at once
    assert (await api.client.get("/v1/alerts", headers=bearer(second))).status_code == 401
    no_key = await api.client.post(f"/v1/identities/{identity['id']}/keys")
    assert no_key.status_code == 409, no_key.text
    assert "disabled" in no_key.json()["detail"]


async def test_identity_refusals_name_the_field(api: Api) -> None:
    await create(api, {"name": "HIS of H1", "role": "hospital_system", "hospitals": ["H001"]})
    taken = await create(
        api, {"name": "HIS of H1", "role": "hospital_system", "hospitals": ["H001"]}, 409
    )
    assert "HIS of H1" in taken["detail"]
    head = await create(api, {"name": "head", "role": "department_head", "hospitals": ["H1"]}, 422)
    assert head["detail"].startswith("departments:")
    everywhere = await create(
        api, {"name": "his", "role": "hospital_system", "hospitals": ["*"]}, 422
    )
    assert everywhere["detail"].startswith("hospitals:")
    role = await create(api, {"name": "x", "role": "superuser"}, 422)
    assert "role" in {e["field"] for e in role["errors"]}
    like_an_id = await create(api, {"name": "idn_0123456789abcdef", "role": "admin"}, 422)
    assert like_an_id["detail"].startswith("name:")
    assert (await api.client.post("/v1/identities/idn_ffff/disable")).status_code == 404
    assert (await api.client.post("/v1/identities/nobody/disable")).status_code == 422
