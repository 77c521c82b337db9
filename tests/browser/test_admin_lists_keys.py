"""In a real browser: the runs list's badges and times, creating an API key (its raw key shown once) and
revoking it from its page, an object's "History / audit" link, and an agent's health card."""

import re

import pytest
from django.contrib.auth.models import Permission

from tests.browser.conftest import shot
from tests.browser.test_admin_pages import failed_run  # noqa: F401 - a fixture
from tests.factories import AgentFactory
from tests.support.http_server import StubServer

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

CARD = {"name": "Echo", "version": "1.0.0", "description": "Echoes.", "skills": [{"id": "echo", "name": "Echo"}]}


@pytest.fixture
def keys_and_audit(staff_admin):
    """Made before the browser starts (the ORM cannot run in Playwright's thread)."""
    staff_admin.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["core", "audit"]))


def test_runs_list_shows_badges_and_exact_times(failed_run, page):  # noqa: F811
    assert page.goto(f"{page.base}/admin/runs/run/").ok
    badge = page.locator("#result_list .wf-badge").first
    assert badge.inner_text().strip().upper() == "FAILED"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", page.locator("#result_list .wf-time").first.inner_text()
    )
    shot(page, "runs-list")
    assert page.goto(f"{page.base}/admin/runs/run/{failed_run.pk}/change/").ok
    page.locator("a[href*='/admin/audit/auditevent/?resource_type__exact=run']").first.click()
    page.wait_for_url(re.compile(r".*resource_id__exact=" + str(failed_run.pk)))
    shot(page, "run-audit-list")


def test_create_a_key_then_revoke_it(keys_and_audit, page):
    assert page.goto(f"{page.base}/admin/core/apikey/add/").ok
    page.fill("#id_name", "browser key")
    page.select_option("#id_role", "operator")
    shot(page, "api-key-add")
    page.click("button[name=_create]")
    page.locator("#raw-key").wait_for()
    raw = page.locator("#raw-key").inner_text().strip()
    assert len(raw) > 20 and "." in raw
    shot(page, "api-key-created")
    page.locator("a[href*='/admin/core/apikey/'][href$='/change/']").last.click()
    assert raw not in page.content()
    page.click("#api-key-revoke button[name=_revoke]")
    page.locator("#api-key-revoked").wait_for()
    assert raw not in page.content()
    shot(page, "api-key-revoked")


@pytest.fixture
def card_server():
    with StubServer({"/.well-known/agent-card.json": (200, CARD, 0)}) as server:
        yield server


@pytest.fixture
def served_agent(transactional_db, card_server):
    return AgentFactory(url=card_server.url + "/", name="echo-agent")


def test_agent_health_card(served_agent, page):
    assert page.goto(f"{page.base}/admin/agents/agent/{served_agent.pk}/change/").ok
    page.click("button[name=_check_health]")
    page.locator("#health-result").wait_for()
    assert page.locator("#health-status").inner_text().strip().lower() == "healthy"
    assert re.search(r"[\d.]+ ms", page.locator("#health-latency").inner_text())
    assert "Echo" in page.locator("#health-card-summary").inner_text()
    shot(page, "agent-health")
