"""A run's admin page: the timeline's figures (durations, retries, waits, nesting), the graph's
colours, the logs' and steps' filters, the live fragment, and a query count that does not grow."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.admin_timeline import graph_statuses, timeline
from runs.choices import LogLevel, RunStatus, StepStatus
from runs.models import Run, RunLog, StepExecution
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_admin import login

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def row(step_id, status, created, started=None, completed=None, **fields) -> dict:
    values = {
        "id": fields.pop(
            "id", f"{fields.get('scope', '')}/{step_id}/{fields.get('attempt', 1)}/{fields.get('try_number', 1)}"
        ),
        "parent_id": None,
        "step_type": "agent",
        "scope": "",
        "attempt": 1,
        "try_number": 1,
        "iteration": None,
        "branch": "",
        "created_at": at(created),
        "started_at": None if started is None else at(started),
        "completed_at": None if completed is None else at(completed),
        "duration_ms": None if completed is None else completed - started,
        "step_id": step_id,
        "status": status,
    }
    values.update(fields)
    return values


def test_the_timeline_shows_durations_retries_and_the_waits_between_steps():
    executions = [
        row("s1", "FAILED", 0, 0, 100),
        row("s1", "COMPLETED", 100, 600, 900, try_number=2),  # waited its 500 ms retry delay
        row("s2", "COMPLETED", 950, 1000, 1500),  # 100 ms after s1 ended
    ]
    shown = timeline(executions, run_start=T0, now=at(5000))
    assert shown.span_ms == 1500 and shown.total_rows == 2 and shown.hidden_rows == 0
    first, second = shown.rows
    assert (first.label, first.tries, first.status, first.duration_ms) == ("s1", 2, "COMPLETED", 300)
    assert [(bar.try_number, bar.duration_ms, bar.wait_ms) for bar in first.bars] == [(1, 100, 0), (2, 300, 500)]
    assert (first.bars[0].left, first.bars[0].width) == (0.0, 6.667)
    assert (first.bars[1].wait_left, first.bars[1].wait_width) == (6.667, 33.333)  # the delay, drawn
    assert (second.wait_ms, second.duration_ms, second.bars[0].left, second.bars[0].width) == (100, 500, 66.667, 33.333)
    assert second.bars[0].wait_left == 60.0  # from s1's end, not from when s2's row was created
    assert [text for _, text in shown.ticks] == ["0", "+375 ms", "+750 ms", "+1.1 s", "+1.5 s"]
    assert "try 2: COMPLETED, ran 300 ms, waited 500 ms" in first.bars[1].title


def test_a_running_or_pending_step_reaches_now():
    executions = [row("s1", "COMPLETED", 0, 0, 1000), row("s2", "RUNNING", 1000, 1200), row("s3", "PENDING", 1500)]
    shown = timeline(executions, run_start=T0, now=at(2000))
    running, pending = shown.rows[1], shown.rows[2]
    assert shown.span_ms == 2000
    assert (running.bars[0].left, running.bars[0].width, running.duration_ms) == (60.0, 40.0, 800)
    assert pending.bars[0].width == 0.0 and pending.wait_ms == 1000  # since s1, before it in the chain, ended


def test_loop_iterations_and_branches_nest_under_their_block():
    executions = [
        row("each", "COMPLETED", 0, 0, 900, id="loop", step_type="loop"),
        row(
            "each",
            "COMPLETED",
            1,
            1,
            400,
            id="it0",
            parent_id="loop",
            step_type="iteration",
            scope="each[0]",
            iteration=0,
        ),
        row(
            "each", "FAILED", 2, 2, 800, id="it1", parent_id="loop", step_type="iteration", scope="each[1]", iteration=1
        ),
        row("double", "COMPLETED", 3, 3, 400, id="d0", parent_id="it0", scope="each[0]"),
        row("double", "FAILED", 4, 5, 800, id="d1", parent_id="it1", scope="each[1]", error_message="x"),
        row("fan", "COMPLETED", 900, 900, 1000, id="fork", step_type="fork_join"),
        row(
            "fan",
            "COMPLETED",
            901,
            901,
            1000,
            id="b",
            parent_id="fork",
            step_type="branch",
            scope="fan:left",
            branch="left",
        ),
        row("report", "COMPLETED", 1000, 1000, 1100),
    ]
    rows = timeline(executions, run_start=T0, now=at(2000)).rows
    assert [(r.label, r.depth) for r in rows] == [
        ("each", 0), ("each [0]", 1), ("double", 2), ("each [1]", 1), ("double", 2), ("fan", 0), ("fan: left", 1),
        ("report", 0),
    ]  # fmt: skip
    assert graph_statuses(executions) == {
        "each": "COMPLETED",
        "double": "FAILED",
        "fan": "COMPLETED",
        "report": "COMPLETED",
    }


def test_the_graph_shows_the_latest_try_of_the_latest_attempt():
    executions = [
        row("s1", "FAILED", 0, 0, 100),
        row("s1", "FAILED", 100, 200, 300, try_number=2),
        row("s1", "COMPLETED", 5000, 5000, 5100, attempt=2),
        row("s2", "RUNNING", 5100, 5100, attempt=2),
    ]
    assert graph_statuses(executions) == {"s1": "COMPLETED", "s2": "RUNNING"}


# ----------------------------------------------------------------------------- the page over HTTP


def failed_run(steps: int, logs: int, name: str = "chain") -> Run:
    """A failed run with `steps` executions of s1/s2 (retries), `logs` entries, s2's last try failed."""
    workflow = workflow_with_agents(f"{name}-a", f"{name}-b", name=name)
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    now = timezone.now()
    rows = [
        StepExecution(
            run=run,
            step_id="s1" if n < steps - 1 else "s2",
            agent_name="a",
            status=StepStatus.FAILED if n == steps - 1 else StepStatus.COMPLETED,
            try_number=n + 1 if n < steps - 1 else 1,
            started_at=now + timedelta(milliseconds=10 * n),
            completed_at=now + timedelta(milliseconds=10 * n + 5),
            duration_ms=5,
            input_data={"text": f"in {n}"},
            output_data=None if n == steps - 1 else {"text": f"out <{n}>"},
            error_message="boom: the agent said no" if n == steps - 1 else "",
        )
        for n in range(steps)
    ]
    StepExecution.objects.bulk_create(rows)
    RunLog.objects.bulk_create(
        RunLog(
            run=run,
            level=LogLevel.ERROR if n % 10 == 9 else LogLevel.INFO,
            source="executor",
            step_id="s2" if n % 2 else "s1",
            message=f"line {n}" + (" failed" if n % 10 == 9 else ""),
        )
        for n in range(logs)
    )
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED, error_message="Step 's2' failed: boom", started_at=now, completed_at=now
    )
    return Run.objects.get(pk=run.pk)


def page_of(client, run, query="") -> str:
    response = client.get(f"/admin/runs/run/{run.id}/change/{query}")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_a_failed_run_page_shows_the_error_graph_timeline_and_pretty_json():
    staff = login("boss", superuser=True)
    run = failed_run(steps=4, logs=20)
    page = page_of(staff, run)
    assert 'id="run-error"' in page and "Step &#x27;s2&#x27; failed: boom" in page
    assert page.count('class="wf-tl-line wf-tl-row') == 2 and "×3" in page  # s1 tried 3 times
    assert '<tr class="wf-row-failed"' in page and "boom: the agent said no" in page
    assert "&quot;text&quot;: &quot;out &lt;0&gt;&quot;" in page  # pretty-printed and escaped
    assert "<details" in page and 'id="run-graph"' in page and "#fee2e2" in page  # s2's box is red
    assert page.count('class="wf-log wf-log-error"') == 2
    assert 'hx-trigger="every' not in page and "run-live-flag" not in page  # over: not polled


@pytest.mark.django_db
def test_logs_and_steps_filter_on_the_server():
    staff = login("boss", superuser=True)
    run = failed_run(steps=4, logs=450)
    errors = page_of(staff, run, "?log_level=error")
    assert errors.count('data-level="error"') == 45 and 'data-level="info"' not in errors
    both = page_of(staff, run, "?log_level=error&log_step=s1")
    assert both.count('data-level="error"') == 0  # errors are the odd lines: s2's
    s2 = page_of(staff, run, "?log_step=s2")
    assert s2.count('class="wf-log ') == 200 and "page 1 of 2" in s2  # capped, with pages
    assert "?log_step=s2&amp;log_page=2#run-logs" in s2
    second = page_of(staff, run, "?log_step=s2&log_page=2")
    assert second.count('class="wf-log ') == 25
    failed = page_of(staff, run, "?step_status=FAILED")
    assert failed.count('<tr class="wf-row-failed"') == 1 and "in 0" not in failed
    assert page_of(staff, run, "?log_level=nonsense&log_page=x").count('class="wf-log ') == 200  # ignored


@pytest.mark.django_db
def test_the_page_reads_the_same_number_of_queries_whatever_the_run_size():
    staff = login("boss", superuser=True)
    small, big = failed_run(steps=3, logs=5), failed_run(steps=120, logs=600, name="big")
    counts = []
    for run in (small, big):
        page_of(staff, run)  # warm: session, content types
        with CaptureQueriesContext(connection) as queries:
            page_of(staff, run)
        counts.append(len(queries))
    assert counts[0] == counts[1] and counts[0] <= 20


@pytest.mark.django_db
def test_the_live_fragment_polls_while_active_and_reloads_on_a_status_change():
    staff = login("boss", superuser=True)
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    page = page_of(staff, run)
    assert 'hx-trigger="every 3s"' in page and f"/admin/runs/run/{run.id}/live/?&amp;seen=PENDING" in page
    fragment = staff.get(f"/admin/runs/run/{run.id}/live/", {"seen": "PENDING"})
    body = fragment.content.decode()
    assert fragment.status_code == 200 and 'id="run-summary"' in body and 'hx-swap-oob="true"' in body
    assert "<html" not in body
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    changed = staff.get(f"/admin/runs/run/{run.id}/live/", {"seen": "PENDING"})
    assert changed.status_code == 204 and changed["HX-Refresh"] == "true"
    assert staff.get("/admin/runs/run/00000000-0000-0000-0000-000000000000/live/").status_code == 404


@pytest.mark.django_db
def test_buttons_and_answers_are_for_operators_only():
    run = failed_run(steps=2, logs=1)
    viewer = login("watcher", group="viewer")
    page = page_of(viewer, run)
    assert 'id="run-error"' in page and 'name="_retry"' not in page and 'id="run-actions"' not in page
    assert viewer.post(f"/admin/runs/run/{run.id}/act/retry/").status_code == 403
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    operator = login("ops", group="operator")
    assert 'name="_retry"' in page_of(operator, run) and 'name="_rerun"' in page_of(operator, run)
    response = operator.post(f"/admin/runs/run/{run.id}/act/retry/", follow=True)
    assert "Run retried." in response.content.decode()
    assert (Run.objects.get(pk=run.pk).status, Run.objects.get(pk=run.pk).attempt) == (RunStatus.PENDING, 2)


@pytest.mark.django_db
def test_a_waiting_step_is_answered_from_the_page_and_its_live_part_by_operators_only():
    run = run_execute(workflow=workflow_with_agents("ask"), input_data={"text": "x"}, user=None)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    step = StepExecution.objects.create(
        run=run, step_id="s1", status=StepStatus.INPUT_REQUIRED, started_at=timezone.now()
    )
    link = f"/admin/runs/stepexecution/{step.pk}/respond/"
    operator, viewer = login("ops", group="operator"), login("watcher", group="viewer")
    for client, shown in ((operator, True), (viewer, False)):
        page = page_of(client, run)
        live = client.get(f"/admin/runs/run/{run.id}/live/", {"seen": "RUNNING"}).content.decode()
        assert "Waiting for input:" in page and "Waiting for input:" in live
        assert (link in page, link in live) == (shown, shown)
