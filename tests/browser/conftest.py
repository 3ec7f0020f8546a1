"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against the
real stack: broker, worker and API processes on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.reference.rules import DEFAULT_RULES_DIR
from tests.browser.hospital_day import HOSPITAL, a_stay
from tests.conftest import _new_database
from tests.integration.harness import TARGET_WATCH, Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 768}
TABLET = {"width": 768, "height": 1024}
TABLET_LANDSCAPE = {"width": 1024, "height": 768}
# the browser's stacks run the monitoring rules drgwatch ships (the harness runs none unless
# told), so the pages show rule alerts as a hospital would see them; the department rules
# are judged every half second
SHIPPED_RULES = {
    "DRGWATCH_RULES_DIR": str(DEFAULT_RULES_DIR),
    "DRGWATCH_RULE_CHECK_SECONDS": "0.5",
}


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[object]:
    """Chromium, headless; the tests skip when it is not installed (scripts/ensure-services
    installs it with apt). Started after the stack: Playwright's synchronous API runs an
    event loop of its own, and the stack's setup runs asyncio."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium"
            " (`apt-get install chromium fonts-noto-cjk`, done by scripts/ensure-services)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack in embedded mode, on a database of this module's own."""
    for database_url in _new_database():
        with running_stack(
            tmp_path_factory.mktemp("stack"), database_url, {**TARGET_WATCH, **SHIPPED_RULES}
        ) as running:
            yield running


@pytest.fixture(scope="module")
def hospital(stack: Stack) -> Stack:
    """One hospital: cases at every level in two departments."""
    events = [
        *a_stay("C-1001", "FM15", "CARDIO", "0.92"),  # blue
        *a_stay("C-1002", "FR13", "CARDIO", "1.04"),  # red
        *a_stay("C-2001", "ES33", "RESP", "0.60"),  # none, until the test pushes it over
        *a_stay("C-2002", "ES31", "RESP", "0.96"),  # yellow
    ]
    stack.post(events)
    stack.wait_for(
        lambda: (
            (stack.case(HOSPITAL, "C-2002") or {}).get("level") == "yellow"
            and (stack.case(HOSPITAL, "C-1002") or {}).get("level") == "red"
            and (stack.case(HOSPITAL, "C-1001") or {}).get("level") == "blue"
        ),
        60,
    )
    return stack
