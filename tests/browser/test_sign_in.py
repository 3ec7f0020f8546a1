"""Signing in to the dashboard on a production-mode stack: the sign-in page, a wrong
password, the overview after signing in, an action sent with the CSRF token, signing out,
and a signed-in department head kept to their department. Skipped while the service has
no sign-in (`GET /v1/session` does not answer 200)."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.helpers import OPERATOR_KEY
from tests.browser.conftest import LAPTOP, SHIPPED_RULES
from tests.browser.hospital_day import HOSPITAL, a_stay
from tests.browser.test_dashboard import shoot
from tests.conftest import _new_database
from tests.integration.harness import Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PASSWORD = "correct horse battery staple"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack in production mode, on a database of its own: every call needs a key or
    a signed-in session."""
    for database_url in _new_database():
        running = Stack(
            workdir=tmp_path_factory.mktemp("stack"),
            database_url=database_url,
            extra_env={
                "DRGWATCH_MODE": "production",
                "DRGWATCH_API_KEYS": OPERATOR_KEY,
                **SHIPPED_RULES,
            },
        )
        try:
            running.start()
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def production(stack: Stack) -> Stack:
    # the sign-in endpoint answers everyone; a build without it refuses or does not know it
    answer = httpx.get(f"{stack.url}/v1/session", timeout=10)
    if answer.status_code != 200:
        pytest.skip(f"this build has no sign-in (GET /v1/session answers {answer.status_code})")
    return stack


def _person(stack: Stack, role: str, *scope: str) -> str:
    """`drgwatch users create NAME --password` (the password read from stdin); the name."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [sys.executable, "-m", "services.cli", "users", "create", name, "--role", role]
        + list(scope)
        + ["--password", "--database-url", stack.database_url],
        input=f"{PASSWORD}\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return name


@pytest.fixture(scope="module")
def cases(production: Stack) -> Stack:
    events = [
        *a_stay("C-1002", "FR13", "CARDIO", "1.04"),
        *a_stay("C-2002", "ES31", "RESP", "0.96"),
    ]
    posted = httpx.post(
        f"{production.url}/v1/events", json={"events": events}, headers=OPERATOR, timeout=30
    )
    assert posted.status_code == 202, posted.text

    def levelled() -> bool:
        listed = httpx.get(
            f"{production.url}/v1/alerts", params={"hospital_id": HOSPITAL}, headers=OPERATOR
        ).json()["items"]
        return {alert["case_id"] for alert in listed} >= {"C-1002", "C-2002"}

    production.wait_for(levelled, 60)
    return production


def _sign_in(page: Any, url: str, name: str, password: str) -> None:
    page.locator("#login-name").fill(name)
    page.locator("#login-password").fill(password)
    page.locator("#login-password").press("Enter")


def test_sign_in_act_and_sign_out(browser: Any, cases: Stack) -> None:
    office = _person(cases, "insurance_office", "--hospital", HOSPITAL)
    context = browser.new_context(viewport=LAPTOP, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{cases.url}/hospitals/{HOSPITAL}/cases/C-1002")
        page.wait_for_url(re.compile(r"/login\?next="))
        _sign_in(page, cases.url, office, "not the password at all")
        expect(page.get_by_test_id("login-error")).to_contain_text("用户名或密码错误")
        shoot(page, "login-refused-zh-laptop")
        _sign_in(page, cases.url, office, PASSWORD)
        page.wait_for_url(f"**/hospitals/{HOSPITAL}/cases/C-1002")
        page.get_by_test_id("case-summary").wait_for()
        assert office in page.inner_text("header")
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        assert cookies["drgwatch_session"]["httpOnly"] is True

        # a change made through the page carries the session's CSRF token
        page.get_by_role("button", name="确认").first.click()
        page.get_by_text("操作已完成").wait_for()

        page.get_by_role("button", name="退出登录").click()
        page.wait_for_url(re.compile(r"/login"))
        page.goto(f"{cases.url}/")
        page.wait_for_url(re.compile(r"/login\?next="))
    finally:
        context.close()


def test_a_signed_in_department_head_sees_only_their_department(browser: Any, cases: Stack) -> None:
    head = _person(cases, "department_head", "--hospital", HOSPITAL, "--department", "CARDIO")
    context = browser.new_context(viewport=LAPTOP, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(f"{cases.url}/login")
        _sign_in(page, cases.url, head, PASSWORD)
        # a department head's landing page is their department
        page.wait_for_url(f"**/hospitals/{HOSPITAL}/departments/CARDIO")
        page.goto(f"{cases.url}/hospitals/{HOSPITAL}/cases/C-2002")
        page.get_by_test_id("case-not-found").wait_for()
        assert "ES31" not in page.inner_text("body")
        page.goto(f"{cases.url}/hospitals/{HOSPITAL}/cases/C-1002")
        page.get_by_test_id("case-summary").wait_for()
    finally:
        context.close()
