"""Browser fixtures: Debian's headless Chromium driven by Playwright against pytest-django's live server.

The live server runs in the test process, so it sees the test's Kafka settings (``kafka_env``); workers are
real ``runkafkaworker`` subprocesses. Waits are Playwright's bounded ones (``expect``), never sleeps.

``KAFKA_JOBS_SCREENSHOTS=docs/images`` makes the tests save a PNG of each dashboard page they reach.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("KAFKA_JOBS_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1100, "height": 720}
WAIT_MS = 20_000  # the longest any expectation waits (a worker joining its group on a loaded machine)
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-password"


def _chromium() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    if path is None:
        pytest.fail(
            f"The browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium, which "
            "'make test' does through scripts/system-packages; elsewhere set KAFKA_JOBS_CHROMIUM).",
            pytrace=False,
        )
    return path


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Return a headless Chromium (Debian's package; Playwright never downloads a browser here).

    One per test, not per session: Playwright's sync API keeps an event loop running in the test's thread
    while it is open, which would break every later test in the process that uses ``async_to_sync``. For the
    same reason Django would refuse ORM calls in the test thread ("SynchronousOnlyOperation") although nothing
    runs concurrently (the thread only waits on the browser): allowed for this test only.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The browser tests need Playwright: pip install -e '.[dev]'.", pytrace=False)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any, transactional_db: None) -> Iterator[Any]:
    """Return a new browser page on the live server (its own cookies), with bounded default waits."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    # The admin's model sidebar starts closed (the admin keeps that choice in localStorage): more room per page.
    context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def logged_in(page: Any) -> Any:
    """Log a superuser in through the admin's login form and return the page, on the admin index."""
    from django.contrib.auth.models import User
    from playwright.sync_api import expect

    User.objects.create_superuser(ADMIN_USER, "admin@example.com", ADMIN_PASSWORD)
    page.goto("/admin/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    expect(page.locator("#user-tools")).to_contain_text(ADMIN_USER)
    return page


def screenshot(page: Any, name: str) -> None:
    """Save ``<name>.png`` of the page's viewport into $KAFKA_JOBS_SCREENSHOTS, if set (for docs/images)."""
    folder = os.environ.get("KAFKA_JOBS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


# The integration tests' per-test topics, group and worker subprocesses.
from tests.integration.conftest import kafka_env, migrated_test_db  # noqa: E402, F401
