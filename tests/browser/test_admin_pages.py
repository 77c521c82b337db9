"""The admin in a real browser: log in, the index, an agent's, a workflow's and a failed run's pages,
and retrying that run with its page's button."""

import re

import pytest

from runs.choices import RunStatus
from runs.models import Run
from runs.services import run_execute
from tests.browser.conftest import in_thread, shot
from tests.factories import AgentFactory
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import result, start, tasks

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def failed_run(transactional_db):
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    [task2] = tasks(result(task, {"text": "y"}))
    result(task2, error="boom")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    return run


def test_login_shows_the_admin_index(page):
    # Selectors kept to what any admin theme has: links to the lists, the page's own text.
    assert page.url == f"{page.base}/admin/"
    assert page.locator("a[href='/admin/runs/run/']").count() >= 1
    assert page.locator("a[href='/admin/workflows/workflow/']").count() >= 1
    shot(page, "admin-index")


def test_an_agent_page_opens(page_after_agent):
    page, agent = page_after_agent
    assert page.goto(f"{page.base}/admin/agents/agent/{agent.pk}/change/").ok
    assert page.locator("#id_name").input_value() == agent.name
    shot(page, "agent-change")


def test_a_workflow_page_opens(failed_run, page):
    assert page.goto(f"{page.base}/admin/workflows/workflow/{failed_run.workflow_id}/change/").ok
    assert page.locator("#content").get_by_text(failed_run.workflow_name).first.is_visible()
    assert {"s1", "s2"} <= set(page.locator("#content").inner_text().split())  # its steps are shown
    shot(page, "workflow-change")


def test_a_failed_run_is_retried_from_its_page(failed_run, page):
    assert page.goto(f"{page.base}/admin/runs/run/{failed_run.pk}/change/").ok
    assert page.locator("#run-actions").is_visible()
    assert page.get_by_text("boom").first.is_visible()  # the error is on the page
    shot(page, "run-failed")
    page.click("[name=_retry]")
    page.wait_for_url(f"{page.base}/admin/runs/run/{failed_run.pk}/change/")
    assert page.get_by_text("Run retried.").is_visible()
    assert page.get_by_text(re.compile(r"^\s*pending\s*$", re.IGNORECASE)).first.is_visible()
    shot(page, "run-retried")
    status, attempt = in_thread(lambda: Run.objects.values_list("status", "attempt").get(pk=failed_run.pk))
    assert (status, attempt) == (RunStatus.PENDING, 2)
    assert page.locator("[name=_retry]").count() == 0  # no longer retryable, so no button


@pytest.fixture
def page_after_agent(transactional_db, request):
    agent = AgentFactory()  # made before the browser starts (see in_thread)
    return request.getfixturevalue("page"), agent
