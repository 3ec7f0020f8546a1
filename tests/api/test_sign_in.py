"""People sign in (production mode, on PostgreSQL and on SQLite): a name and password
open a server-side session held by an HttpOnly cookie; changes need the session's CSRF
token; sessions expire (idle and absolute, by an injected clock), end on sign-out, on a
disabled identity and on a new password; failed sign-ins are slowed and logged without
the password."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import text

from services.access import passwords
from services.access import service as access_service
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.storage import schema
from tests.api.helpers import OPERATOR_KEY
from tests.api.live import serving
from tests.api.webhooks import raise_alert
from tests.conftest import _new_database

PASSWORD = "correct horse battery"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
THRESHOLDS = {"blue": "0.9", "yellow": "0.95", "red": "1.0"}
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


class Clock:
    """The time the app's sessions and throttle go by; a test moves it on."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class SignIn:
    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock
    url: str

    async def person(
        self,
        name: str,
        *,
        role: str = "admin",
        hospitals: list[str] | None = None,
        departments: list[str] | None = None,
        password: str | None = PASSWORD,
    ) -> str:
        """A new identity (with a sign-in password unless None); its id."""
        async with self.app.state.sessions() as db_session:
            identity, _ = await access_service.create_identity(
                db_session=db_session,
                name=name,
                role=role,
                hospitals=hospitals or [],
                departments=departments or [],
                password=password,
            )
            await db_session.commit()
        return identity.id

    async def sign_in(
        self, name: str, password: str = PASSWORD, client: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        return await (client or self.client).post(
            "/v1/session", json={"name": name, "password": password}
        )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.app.state.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}"
    else:
        yield from _new_database()


def settings_for(url: str, tmp_path: Path, **over: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "mode": "production",
        "database_url": url,
        "api_keys": OPERATOR_KEY,
        "data_dir": tmp_path,
        "topic_prefix": "drgwatch-test",
        "webhooks": False,
    }
    return ApiSettings(**(values | over))


@contextlib.asynccontextmanager
async def running(settings: ApiSettings, clock: Clock, base_url: str) -> AsyncIterator[SignIn]:
    """The app on a database at the head, with the test's clock."""
    await schema.upgrade(settings.resolved_database_url)
    app = create_app(settings, connect_broker=False, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield SignIn(app, client, clock, settings.resolved_database_url)


@pytest.fixture
async def site(database_url: str, tmp_path: Path) -> AsyncIterator[SignIn]:
    async with running(settings_for(database_url, tmp_path), Clock(), "http://test") as signin:
        yield signin


def cookie_header(response: httpx.Response) -> str:
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 1, cookies
    return cookies[0]


def failures(reason: str) -> float:
    value = REGISTRY.get_sample_value("drgwatch_sign_in_failures_total", {"reason": reason})
    return value or 0.0


async def test_a_person_signs_in_and_reads_with_the_cookie(site: SignIn) -> None:
    identity_id = await site.person(
        "Dr Li", role="department_head", hospitals=["H001"], departments=["CARD"]
    )
    assert (await site.client.get("/v1/hospitals/H001/cases")).status_code == 401

    signed = await site.sign_in("Dr Li")
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["signed_in"] is True and body["sign_in_required"] is True
    assert body["mode"] == "production" and body["timezone"] == "Asia/Shanghai"
    assert body["identity"] == {
        "identity_id": identity_id,
        "name": "Dr Li",
        "role": "department_head",
        "hospitals": ["H001"],
        "departments": ["CARD"],
    }
    assert len(body["csrf_token"]) >= 40
    assert datetime.fromisoformat(body["expires_at"]) == START + timedelta(minutes=30)
    cookie = cookie_header(signed)
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http here; https below
    token = cookie.split(";")[0].removeprefix("drgwatch_session=")
    assert len(token) >= 43  # 256 random bits

    # the client keeps the cookie: reads work, in the person's scope only
    assert (await site.client.get("/v1/hospitals/H001/cases")).status_code == 200
    assert (await site.client.get("/v1/hospitals/H002/cases")).status_code == 404
    again = (await site.client.get("/v1/session")).json()
    assert again["identity"]["identity_id"] == identity_id
    assert again["csrf_token"] == body["csrf_token"]

    # only the token's digest is stored
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert await site.scalar("SELECT count(*) FROM sign_in_sessions") == 1
    assert (
        await site.scalar("SELECT count(*) FROM sign_in_sessions WHERE token_digest = :d", d=digest)
        == 1
    )
    assert (
        await site.scalar("SELECT count(*) FROM sign_in_sessions WHERE token_digest = :t", t=token)
        == 0
    )
    stored_hash = await site.scalar("SELECT password_hash FROM identities")
    assert stored_hash.startswith("$argon2id$") and PASSWORD not in stored_hash


async def test_over_https_the_cookie_is_secure(database_url: str, tmp_path: Path) -> None:
    async with running(settings_for(database_url, tmp_path), Clock(), "https://test") as site:
        await site.person("Dr Li")
        signed = await site.sign_in("Dr Li")
        assert signed.status_code == 200
        assert "secure" in {p.strip().lower() for p in cookie_header(signed).split(";")}
        assert (await site.client.get("/v1/alerts")).status_code == 200


async def test_wrong_password_unknown_name_disabled_and_keys_only_get_one_answer(
    site: SignIn, caplog: pytest.LogCaptureFixture
) -> None:
    await site.person("Dr Li")
    await site.person("Dr Wang")
    await site.person("HIS", role="hospital_system", hospitals=["H001"], password=None)
    disabled = await site.client.post(
        "/v1/identities/" + await _id(site, "Dr Wang") + "/disable", headers=OPERATOR
    )
    assert disabled.status_code == 200
    before = {r: failures(r) for r in ("wrong_password", "unknown_name", "disabled", "no_password")}
    caplog.set_level(logging.INFO, logger="services.api.signin.router")
    attempts = [
        ("Dr Li", "not the password at all", "wrong_password"),
        ("Dr Nobody", "whatever password 123", "unknown_name"),
        ("Dr Wang", PASSWORD, "disabled"),
        ("HIS", "any password of length", "no_password"),
        ("Dr\u0000Li", PASSWORD, "unknown_name"),  # no name holds a NUL; no query is made
    ]
    for name, password, reason in attempts:
        refused = await site.sign_in(name, password)
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"detail": "the name or the password is wrong"}
        assert "set-cookie" not in refused.headers
        before[reason] += 1
        assert failures(reason) == before[reason]
    logged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == len(attempts)
    for record, (name, password, reason) in zip(logged, attempts, strict=True):
        message = record.getMessage()
        assert repr(name) in message and reason in message and "127.0.0.1" in message
        assert password not in message
    assert PASSWORD not in caplog.text
    assert "not the password at all" not in caplog.text
    assert "whatever password" not in caplog.text
    assert await site.scalar("SELECT count(*) FROM sign_in_sessions") == 0


async def _id(site: SignIn, name: str) -> str:
    return str(await site.scalar("SELECT id FROM identities WHERE name = :n", n=name))


async def test_a_disabled_identity_is_signed_out_at_once(site: SignIn) -> None:
    identity_id = await site.person("Dr Li", role="insurance_office", hospitals=["H001"])
    assert (await site.sign_in("Dr Li")).status_code == 200
    assert (await site.client.get("/v1/alerts")).status_code == 200
    disabled = await site.client.post(f"/v1/identities/{identity_id}/disable", headers=OPERATOR)
    assert disabled.status_code == 200
    refused = await site.client.get("/v1/alerts")
    assert refused.status_code == 401
    assert (await site.client.get("/v1/session")).json()["signed_in"] is False
    assert await site.scalar("SELECT count(*) FROM sign_in_sessions WHERE revoked_at IS NULL") == 0


async def test_a_disabled_identity_is_refused_even_before_its_sessions_are_revoked(
    site: SignIn,
) -> None:
    await site.person("Dr Li")
    assert (await site.sign_in("Dr Li")).status_code == 200
    # disabled by hand in the database, sessions untouched: the lookup asks every time
    async with site.app.state.engine.begin() as connection:
        await connection.execute(text("UPDATE identities SET disabled_at = :t"), {"t": START})
    assert (await site.client.get("/v1/alerts")).status_code == 401


async def test_a_new_password_ends_every_session(site: SignIn) -> None:
    identity_id = await site.person("Dr Li")
    other = httpx.AsyncClient(transport=site.client._transport, base_url="http://test")
    async with other:
        assert (await site.sign_in("Dr Li")).status_code == 200
        assert (await site.sign_in("Dr Li", client=other)).status_code == 200
        changed = await site.client.put(
            f"/v1/identities/{identity_id}/password",
            json={"password": "a brand new password"},
            headers=OPERATOR,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["password_set"] is True
        assert (await other.get("/v1/alerts")).status_code == 401
    site.client.cookies.clear()
    assert (await site.sign_in("Dr Li")).status_code == 401
    assert (await site.sign_in("Dr Li", "a brand new password")).status_code == 200


async def test_a_password_shorter_than_twelve_characters_is_refused(site: SignIn) -> None:
    identity_id = await site.person("Dr Li")
    short = await site.client.put(
        f"/v1/identities/{identity_id}/password", json={"password": "eleven char"}, headers=OPERATOR
    )
    assert short.status_code == 422
    assert short.json()["detail"] == "password: at least 12 characters"
    created = await site.client.post(
        "/v1/identities",
        json={"name": "Dr Wang", "role": "admin", "password": "short"},
        headers=OPERATOR,
    )
    assert created.status_code == 422
    assert await site.scalar("SELECT count(*) FROM identities WHERE name = 'Dr Wang'") == 0
    # spaces are part of a password, as typed
    await site.person("Dr Zhao", password="  twelve chars ")
    assert (await site.sign_in("Dr Zhao", "twelve chars")).status_code == 401
    assert (await site.sign_in("Dr Zhao", "  twelve chars ")).status_code == 200


async def test_a_session_expires_when_idle(site: SignIn) -> None:
    await site.person("Dr Li")
    assert (await site.sign_in("Dr Li")).status_code == 200
    site.clock.advance(minutes=20)
    assert (await site.client.get("/v1/alerts")).status_code == 200
    site.clock.advance(minutes=20)  # 40 minutes in, 20 since the last request
    session = (await site.client.get("/v1/session")).json()
    assert datetime.fromisoformat(session["expires_at"]) == site.clock.now + timedelta(minutes=30)
    site.clock.advance(minutes=30)
    assert (await site.client.get("/v1/alerts")).status_code == 401
    gone = await site.client.get("/v1/session")
    assert gone.json()["signed_in"] is False
    assert (
        'drgwatch_session=""' in cookie_header(gone) or "max-age=0" in cookie_header(gone).lower()
    )


async def test_a_session_ends_after_its_absolute_lifetime_however_busy(site: SignIn) -> None:
    await site.person("Dr Li")
    assert (await site.sign_in("Dr Li")).status_code == 200
    for _ in range(12 * 3 - 1):  # a request every 20 minutes, for 11 h 40 min
        site.clock.advance(minutes=20)
        assert (await site.client.get("/v1/alerts")).status_code == 200
    expires = datetime.fromisoformat((await site.client.get("/v1/session")).json()["expires_at"])
    assert expires == START + timedelta(hours=12)
    site.clock.advance(minutes=20)
    assert (await site.client.get("/v1/alerts")).status_code == 401


async def test_lifetimes_are_settings(database_url: str, tmp_path: Path) -> None:
    settings = settings_for(
        database_url, tmp_path, session_idle_minutes=5, session_absolute_hours=1
    )
    async with running(settings, Clock(), "http://test") as site:
        await site.person("Dr Li")
        signed = await site.sign_in("Dr Li")
        assert datetime.fromisoformat(signed.json()["expires_at"]) == START + timedelta(minutes=5)
        site.clock.advance(minutes=6)
        assert (await site.client.get("/v1/alerts")).status_code == 401


async def test_sign_out_ends_the_session_on_the_server(site: SignIn) -> None:
    await site.person("Dr Li")
    signed = await site.sign_in("Dr Li")
    token = cookie_header(signed).split(";")[0].removeprefix("drgwatch_session=")
    csrf = signed.json()["csrf_token"]
    out = await site.client.delete("/v1/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    cleared = cookie_header(out).lower()
    assert cleared.startswith("drgwatch_session=") and "max-age=0" in cleared
    assert await site.scalar("SELECT count(*) FROM sign_in_sessions WHERE revoked_at IS NULL") == 0
    # the old cookie, presented again (as a copy of it would be), opens nothing
    site.client.cookies.clear()
    replayed = await site.client.get("/v1/alerts", cookies={"drgwatch_session": token})
    assert replayed.status_code == 401
    # signing out with no session is harmless
    assert (await site.client.delete("/v1/session")).status_code == 204


async def test_changes_need_the_sessions_csrf_token(site: SignIn) -> None:
    await site.person("Dr Li")
    csrf = (await site.sign_in("Dr Li")).json()["csrf_token"]

    missing = await site.client.put("/v1/alert-thresholds", json=THRESHOLDS)
    assert missing.status_code == 403
    assert "X-CSRF-Token: missing" in missing.json()["detail"]
    wrong = await site.client.put(
        "/v1/alert-thresholds", json=THRESHOLDS, headers={"X-CSRF-Token": csrf[:-2] + "xx"}
    )
    assert wrong.status_code == 403
    assert "X-CSRF-Token: does not match" in wrong.json()["detail"]
    assert await site.scalar("SELECT count(*) FROM alert_thresholds") == 0

    right = await site.client.put(
        "/v1/alert-thresholds", json=THRESHOLDS, headers={"X-CSRF-Token": csrf}
    )
    assert right.status_code == 200, right.text
    assert await site.scalar("SELECT count(*) FROM alert_thresholds") == 1

    # signing out is a change too: without the token the session lives on
    assert (await site.client.delete("/v1/session")).status_code == 403
    assert (await site.client.get("/v1/alerts")).status_code == 200


async def test_an_api_key_needs_no_csrf_token_and_wins_over_a_cookie(site: SignIn) -> None:
    await site.person("Dr Li", role="department_head", hospitals=["H001"], departments=["CARD"])
    assert (await site.sign_in("Dr Li")).status_code == 200
    # a department head may not set thresholds; the operator key may, cookie or not
    with_key = await site.client.put("/v1/alert-thresholds", json=THRESHOLDS, headers=OPERATOR)
    assert with_key.status_code == 200, with_key.text
    with_both = await site.client.get("/v1/session", headers=OPERATOR)
    assert "set-cookie" not in with_both.headers  # the key's answer leaves the cookie be
    session = with_both.json()
    assert session["signed_in"] is True
    assert session["identity"]["identity_id"] == "operator"
    assert session["csrf_token"] is None and session["expires_at"] is None


async def test_failed_sign_ins_are_slowed_per_name(
    site: SignIn, caplog: pytest.LogCaptureFixture
) -> None:
    await site.person("Dr Li")
    caplog.set_level(logging.WARNING, logger="services.api.signin.router")
    throttled_before = failures("throttled")
    for attempt in range(5):
        refused = await site.sign_in("Dr Li", f"guess number {attempt:04d}")
        assert refused.status_code == 401, attempt
    blocked = await site.sign_in("Dr Li")  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert failures("throttled") == throttled_before + 1
    assert "throttled" in caplog.text and PASSWORD not in caplog.text
    assert "guess number" not in caplog.text

    site.clock.advance(seconds=2)  # the first block is 1 s
    assert (await site.sign_in("Dr Li", "guess number 0006")).status_code == 401
    doubled = await site.sign_in("Dr Li")
    assert doubled.status_code == 429
    assert int(doubled.headers["retry-after"]) == 2
    site.clock.advance(seconds=3)
    assert (await site.sign_in("Dr Li")).status_code == 200
    # a success starts the count afresh: four more failures are not slowed
    site.client.cookies.clear()
    for attempt in range(4):
        assert (await site.sign_in("Dr Li", f"guess again {attempt:04d}")).status_code == 401
    assert (await site.sign_in("Dr Li")).status_code == 200


async def test_failed_sign_ins_are_slowed_per_address(site: SignIn) -> None:
    await site.person("Dr Li")
    for attempt in range(20):  # one failure each for 20 names
        assert (await site.sign_in(f"name {attempt}", "wrong password!")).status_code == 401
    blocked = await site.sign_in("Dr Li")
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "1"


async def test_the_session_endpoint_answers_everyone(site: SignIn) -> None:
    anonymous = await site.client.get("/v1/session")
    assert anonymous.status_code == 200
    assert anonymous.json() == {
        "signed_in": False,
        "sign_in_required": True,
        "mode": "production",
        "identity": None,
        "csrf_token": None,
        "expires_at": None,
        "timezone": "Asia/Shanghai",
    }
    wrong_key = await site.client.get("/v1/session", headers={"X-API-Key": "not-a-key-000"})
    assert wrong_key.status_code == 200 and wrong_key.json()["signed_in"] is False
    _, key = await _key_of(site, "HIS H1", "hospital_system", ["H001"])
    with_key = (await site.client.get("/v1/session", headers={"X-API-Key": key})).json()
    assert with_key["signed_in"] is True
    assert with_key["identity"]["name"] == "HIS H1"
    assert with_key["identity"]["hospitals"] == ["H001"]
    assert with_key["csrf_token"] is None


async def _key_of(site: SignIn, name: str, role: str, hospitals: list[str]) -> tuple[str, str]:
    async with site.app.state.sessions() as db_session:
        identity, key = await access_service.create_identity(
            db_session=db_session, name=name, role=role, hospitals=hospitals, departments=[]
        )
        await db_session.commit()
    return identity.id, key


async def test_embedded_mode_is_the_local_admin_until_someone_signs_in(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path, mode="embedded", api_keys="")
    async with running(settings, Clock(), "http://127.0.0.1:8000") as site:
        local = (await site.client.get("/v1/session")).json()
        assert local["signed_in"] is True and local["sign_in_required"] is False
        assert local["mode"] == "embedded"
        assert local["identity"]["identity_id"] == "local"
        assert local["identity"]["role"] == "admin"
        assert local["csrf_token"] is None
        await site.person("Dr Li", role="department_head", hospitals=["H001"], departments=["CARD"])
        person = (await site.sign_in("Dr Li")).json()
        assert person["identity"]["name"] == "Dr Li" and person["sign_in_required"] is False
        # signed in, the person's own scope and role apply, and changes need the token
        assert (await site.client.get("/v1/hospitals/H002/cases")).status_code == 404
        refused = await site.client.put("/v1/alert-thresholds", json=THRESHOLDS)
        assert refused.status_code == 403


async def test_a_same_origin_page_passes_the_browser_guard_with_its_cookie(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path, allowed_hosts="drgwatch.example")
    async with running(settings, Clock(), "https://drgwatch.example") as site:
        await site.person("Dr Li")
        page = {"Origin": "https://drgwatch.example"}
        signed = await site.client.post(
            "/v1/session", json={"name": "Dr Li", "password": PASSWORD}, headers=page
        )
        assert signed.status_code == 200
        csrf = signed.json()["csrf_token"]
        changed = await site.client.put(
            "/v1/alert-thresholds", json=THRESHOLDS, headers={**page, "X-CSRF-Token": csrf}
        )
        assert changed.status_code == 200, changed.text
        foreign = await site.client.put(
            "/v1/alert-thresholds",
            json=THRESHOLDS,
            headers={"Origin": "https://evil.example", "X-CSRF-Token": csrf},
        )
        assert foreign.status_code == 403
        assert "Origin" in foreign.json()["detail"]


async def test_a_hash_of_older_parameters_is_replaced_at_sign_in(site: SignIn) -> None:
    await site.person("Dr Li")
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    assert passwords.needs_rehash(weaker)
    async with site.app.state.engine.begin() as connection:
        await connection.execute(text("UPDATE identities SET password_hash = :h"), {"h": weaker})
    assert (await site.sign_in("Dr Li")).status_code == 200
    stored = await site.scalar("SELECT password_hash FROM identities")
    assert stored != weaker and not passwords.needs_rehash(stored)
    assert passwords.matches(stored, PASSWORD)


class CountingHasher(PasswordHasher):
    """The real hasher, counting the hashes it verifies against."""

    def __init__(self) -> None:
        super().__init__()
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.verified.append(str(hash))
        return super().verify(hash, password)


async def test_every_refusal_costs_one_password_check(
    site: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown name, or one without a password, is checked against the dummy hash, so
    its answer takes as long as a wrong password's and does not tell which names exist."""
    await site.person("Dr Li")
    await site.person("HIS", role="hospital_system", hospitals=["H001"], password=None)
    hasher = CountingHasher()
    monkeypatch.setattr(passwords, "_HASHER", hasher)
    stored = await site.scalar("SELECT password_hash FROM identities WHERE name = 'Dr Li'")
    for name, checked_against in [
        ("Dr Nobody", passwords.DUMMY_HASH),
        ("HIS", passwords.DUMMY_HASH),
        ("Dr Li", stored),
    ]:
        hasher.verified.clear()
        assert (await site.sign_in(name, "a wrong password")).status_code == 401
        assert hasher.verified == [checked_against], name


async def test_a_signed_in_live_stream_ends_when_its_session_does(
    database_url: str, tmp_path: Path
) -> None:
    """The stream asks again who its caller is (every 5 s), past the session's sliding
    touch: a signed-out session, like a revoked key, stops it (embedded mode here, where
    a request without a session would be the local admin)."""
    settings = settings_for(database_url, tmp_path, mode="embedded", api_keys="")
    async with running(settings, Clock(), "http://127.0.0.1") as site:
        await _stream_until_signed_out(site)


async def _stream_until_signed_out(site: SignIn) -> None:
    await site.person("Dr Li", role="insurance_office", hospitals=["H001"])
    async with (
        serving(site.app) as base,
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5, read=30)) as browser,
    ):
        signed = await site.sign_in("Dr Li", client=browser)
        assert signed.status_code == 200
        received: list[str] = []

        async def read() -> float:
            async with browser.stream("GET", "/v1/alerts/stream") as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        received.append(line)
            return time.monotonic()

        reading = asyncio.create_task(read())
        await asyncio.sleep(0.5)
        await raise_alert(site.app.state.sessions, case_id="C1")
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.05)
        assert len(received) == 1
        out = await browser.delete(
            "/v1/session", headers={"X-CSRF-Token": signed.json()["csrf_token"]}
        )
        assert out.status_code == 204
        signed_out_at = time.monotonic()
        ended_at = await asyncio.wait_for(reading, 15)
        assert ended_at - signed_out_at <= 10.0
