"""Browser tests: Playwright's sync API driving the system's Chromium (never a downloaded browser)
against pytest-django's live server.

Without a browser they skip locally, and fail where one is required (CI, or BROWSER_TESTS_REQUIRED=1),
so CI cannot pass by skipping them.
"""

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connections

from core.roles import Role
from tests.support.server import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "browser"
PASSWORD = "pw-123456-long"


def chromium_path() -> str | None:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if Path(path).is_file() and os.access(path, os.X_OK) else None


def browser_missing(reason: str):
    required = (
        os.environ.get("CI", "").lower() not in ("", "0", "false") or os.environ.get("BROWSER_TESTS_REQUIRED") == "1"
    )
    if required:
        pytest.fail(f"browser tests are required here but cannot run: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason} (apt-get install chromium; pip install -r requirements-dev.txt)")


@pytest.fixture(autouse=True, scope="session")
def chromium_executable() -> str:
    """Checked first, so a machine without the browser skips (or fails) before any database work."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        browser_missing("the playwright package is not installed")
    path = chromium_path()
    if path is None:
        browser_missing("no Chromium executable (set CHROMIUM_PATH or install Debian's chromium)")
    return path


@pytest.fixture
def chromium(chromium_executable, live_server, staff_admin):
    # Per test, and after the database fixtures: while Playwright runs, this thread cannot use the ORM.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def in_thread(fn, *args):
    """Run ORM code outside the test's thread: Playwright's sync API keeps an asyncio loop marked as
    running there, and Django refuses database calls from such a thread."""

    def call():
        try:
            return fn(*args)
        finally:
            connections.close_all()  # this thread's own connection, or the test database cannot be dropped

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


@pytest.fixture
def staff_admin(transactional_db):
    """A staff user with the admin role (its group) and the model permissions the admin pages check."""
    user = get_user_model().objects.create_user("browser-admin", "", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=Role.ADMIN)[0])
    apps = ["agents", "workflows", "runs"]
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=apps))
    return user


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_call_failed = report.failed  # read by `page`, for a screenshot of a failure
    return report


@pytest.fixture
def page(request, live_server, staff_admin, chromium):
    """A logged-in admin page; screenshots (the tests' own, and the last page of a failed test) go to
    test-artifacts/browser/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.base = live_server.url
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", staff_admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    if getattr(request.node, "browser_call_failed", False):
        shot(page, f"FAILED-{request.node.name}")
    context.close()


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
