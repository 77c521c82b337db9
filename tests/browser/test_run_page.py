"""A failed run's page in a real browser: the timeline and the highlighted error, the logs filtered
by level (a server-side GET), and retrying the run with the page's button."""

import pytest
from django.utils import timezone

from runs.choices import RunStatus
from runs.models import Run, StepExecution
from runs.services import run_execute
from tests.browser.conftest import in_thread, shot
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_admin_run_page import failed_run

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def run(transactional_db):
    return failed_run(steps=4, logs=30)  # s1 tried 3 times, then s2 failed; every 10th log line an error


def test_a_failed_run_shows_its_timeline_and_error_and_filters_its_logs(run, page):
    assert page.goto(f"{page.base}/admin/runs/run/{run.pk}/change/").ok
    assert page.locator("#run-error").is_visible()
    assert "boom" in page.locator("#run-error").inner_text()
    assert page.locator("#run-status").inner_text().strip().lower() == "failed"
    rows = page.locator("#run-timeline .wf-tl-row")
    assert rows.count() == 2 and rows.nth(1).get_attribute("data-status") == "FAILED"
    assert page.locator("#run-timeline .wf-tl-row .wf-tl-bar").count() == 4  # s1's three tries, s2's one
    failed_step = page.locator("#run-steps tr.wf-row-failed")
    assert failed_step.count() == 1 and "boom: the agent said no" in failed_step.inner_text()
    # Highlighted: the failed row's background is not the table's white.
    assert failed_step.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    page.locator("#run-steps details").first.click()
    assert page.locator("#run-steps details pre").first.is_visible()
    shot(page, "run-page-failed")

    page.select_option("#id_log_level", "error")
    page.click("#log-filter-apply")
    page.wait_for_url("**log_level=error**")
    levels = page.locator("#run-log-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.level)")
    assert levels == ["error", "error", "error"]
    assert page.locator("#run-log-table .wf-log-error").first.is_visible()
    shot(page, "run-page-logs-errors")


def test_a_failed_run_is_retried_from_its_page(run, page):
    assert page.goto(f"{page.base}/admin/runs/run/{run.pk}/change/").ok
    page.click("#run-actions button[name=_retry]")
    page.wait_for_url(f"{page.base}/admin/runs/run/{run.pk}/change/")
    assert page.get_by_text("Run retried.").is_visible()
    assert page.locator("#run-status").inner_text().strip().lower() == "pending"
    assert page.locator("#run-attempt").inner_text().strip() == "2"
    assert page.locator("#run-live-flag").is_visible()  # active again: the page polls
    assert page.locator("button[name=_retry]").count() == 0
    shot(page, "run-page-retried")
    status, attempt = in_thread(lambda: Run.objects.values_list("status", "attempt").get(pk=run.pk))
    assert (status, attempt) == (RunStatus.PENDING, 2)


@pytest.fixture
def active(transactional_db):
    return run_execute(workflow=workflow_with_agents("live-a"), input_data={"text": "x"}, user=None)


def test_an_active_run_page_refreshes_itself_and_stops_when_the_run_ends(active, page):
    assert page.goto(f"{page.base}/admin/runs/run/{active.pk}/change/").ok
    assert page.locator("#run-live-flag").is_visible() and page.locator("#run-timeline .wf-tl-row").count() == 0

    def step_starts():
        StepExecution.objects.create(run_id=active.pk, step_id="s1", agent_name="live-a", started_at=timezone.now())

    in_thread(step_starts)  # same status: the polled fragment brings the new row in
    page.locator("#run-timeline .wf-tl-row").first.wait_for(timeout=10_000)
    in_thread(lambda: Run.objects.filter(pk=active.pk).update(status=RunStatus.FAILED, error_message="gone wrong"))
    page.locator("#run-error").wait_for(timeout=10_000)  # a new status: the whole page reloads
    assert page.locator("#run-live-flag").count() == 0 and page.locator("button[name=_retry]").count() == 1
    shot(page, "run-page-refreshed")


@pytest.fixture
def loop_run(transactional_db):
    from tests.runs.test_blocks import doubling, drive, loop_workflow

    run = run_execute(
        workflow=loop_workflow(), input_data={"items": [{"v": n} for n in range(4)] + [{"v": "bad"}]}, user=None
    )
    drive(run, doubling)
    return run


def test_a_loop_run_nests_its_iterations_in_the_timeline(loop_run, page):
    assert page.goto(f"{page.base}/admin/runs/run/{loop_run.pk}/change/").ok
    labels = page.locator("#run-timeline .wf-tl-row .wf-tl-label").all_inner_texts()
    assert labels[0].startswith("each") and any(label.startswith("each [4]") for label in labels)
    assert page.locator("#run-timeline .wf-tl-row[data-status=FAILED]").count() >= 2  # the loop and the bad item
    shot(page, "run-page-loop")
