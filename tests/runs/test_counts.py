"""The runs list's exact totals (runs/counts.py): every way a run is written keeps them right.

Each test compares the API's `total` (and `run_total`) with COUNT(*) for the same filters, before
and after the counters' deltas are folded. On SQLite the list counts rows, so the comparisons hold
there too; the tests of the counters themselves need PostgreSQL.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from core.models import OutboxMessage
from runs.choices import RunStatus
from runs.counts import run_counts_fold, run_counts_rebuild, run_total
from runs.models import Run, RunCount, RunCountDelta
from runs.pause import run_pause, run_resume
from runs.rerun import run_rerun
from runs.services import run_cancel, run_execute, run_retry
from runs.tasks import runs_recover
from tests.runs.helpers import workflow_with_agents
from workflows.services import workflow_create

pytestmark = pytest.mark.django_db
postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the run counters are PostgreSQL's")
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def filters(workflows) -> list[dict]:
    """Query parameters (as the API takes them) covering each filter and their combinations."""
    a_day, three_days = NOW - timedelta(days=1, minutes=7), NOW - timedelta(days=3, hours=5, minutes=11)
    ranges = [{}, {"created_after": a_day}, {"created_before": a_day}]
    ranges += [{"created_after": three_days, "created_before": NOW - timedelta(minutes=50)}]
    ranges += [{"created_after": NOW - timedelta(minutes=40), "created_before": NOW - timedelta(minutes=5)}]
    combos = []
    for statuses in (None, ["FAILED"], ["COMPLETED", "PENDING"]):
        for workflow in (None, *workflows):
            for window in ranges:
                combos.append({"status": statuses, "workflow_id": workflow and workflow.id, **window})
    return combos


def expected(params) -> int:
    runs = Run.objects.all()
    if params.get("status"):
        runs = runs.filter(status__in=params["status"])
    if params.get("workflow_id"):
        runs = runs.filter(workflow_id=params["workflow_id"])
    if params.get("created_after"):
        runs = runs.filter(created_at__gte=params["created_after"])
    if params.get("created_before"):
        runs = runs.filter(created_at__lt=params["created_before"])
    return runs.count()


def query(params) -> str:
    parts = ["page_size=1"]  # a full first page: the total is counted, not the page's length
    if params.get("status"):
        parts.append("status=" + ",".join(params["status"]))
    if params.get("workflow_id"):
        parts.append(f"workflow_id={params['workflow_id']}")
    for name in ("created_after", "created_before"):
        if params.get(name):
            parts.append(f"{name}={params[name].isoformat().replace('+00:00', 'Z')}")
    return "?" + "&".join(parts)


def assert_exact(client, workflows):
    """The API's total equals COUNT(*) for every filter combination, before and after a fold."""
    for fold in (False, True):
        if fold:
            run_counts_fold()
        for params in filters(workflows):
            response = client.get(f"/api/v1/runs{query(params)}")
            assert response.status_code == 200, response.json()
            assert response.json()["total"] == expected(params), (params, fold)


@pytest.fixture
def workflows():
    return workflow_with_agents("a", name="first"), workflow_with_agents("b", name="second")


def spread(runs):
    """Moves runs back in time, over minutes, hours and days (an UPDATE of created_at: a path too)."""
    offsets = [timedelta(minutes=3), timedelta(minutes=45), timedelta(hours=5), timedelta(days=1, minutes=2)]
    offsets += [timedelta(days=2, hours=3), timedelta(days=4), timedelta(days=40)]
    for index, run in enumerate(runs):
        Run.objects.filter(pk=run.pk).update(created_at=NOW - offsets[index % len(offsets)])


def test_execute_and_the_status_moves_of_the_services(viewer, operator, workflows):
    first, second = workflows
    runs = [run_execute(workflow=w, input_data={"text": "x"}, user=None) for w in (first, first, second) * 3]
    spread(runs)
    assert_exact(viewer, workflows)
    run_cancel(run=runs[0], user=operator.user)  # PENDING -> CANCELLED
    run_retry(run=runs[0], user=operator.user)  # CANCELLED -> PENDING
    run_pause(run=runs[1], user=operator.user)
    assert_exact(viewer, workflows)
    run_resume(run=runs[1], user=operator.user)  # PAUSED -> RUNNING
    run_cancel(run=runs[2], user=operator.user)
    assert_exact(viewer, workflows)


def test_bulk_updates_creates_deletes_and_saves(viewer, workflows):
    first, second = workflows
    runs = [run_execute(workflow=w, input_data={"text": "x"}, user=None) for w in (first, second) * 4]
    spread(runs)
    run_counts_fold()
    Run.objects.filter(workflow=first).update(status=RunStatus.FAILED)  # one UPDATE, many rows
    copy = Run(**{f.attname: getattr(runs[1], f.attname) for f in Run._meta.concrete_fields if f.attname != "id"})
    Run.objects.bulk_create([copy])
    row = Run.objects.get(pk=runs[3].pk)
    row.status, row.workflow_id = RunStatus.COMPLETED, first.id  # a save moving status and workflow
    row.save()
    assert_exact(viewer, workflows)
    Run.objects.filter(pk__in=[runs[0].pk, runs[5].pk]).delete()
    assert_exact(viewer, workflows)


def test_rerun_and_recovery(viewer, workflows):
    first, _ = workflows
    run = run_execute(workflow=first, input_data={"text": "x"}, user=None)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    run_rerun(Run.objects.get(pk=run.pk), user=None)  # a new run, from the start step
    Run.objects.filter(status=RunStatus.PENDING).update(lease_expires_at=NOW - timedelta(days=1))
    OutboxMessage.objects.update(sent_at=NOW)  # its request went out, and was lost
    assert runs_recover() == 1  # saves the run (lease, recoveries) without moving its status
    assert_exact(viewer, workflows)


@postgresql
def test_counts_come_from_the_counters_and_edges_from_the_rows(workflows):
    first, second = workflows
    runs = [run_execute(workflow=w, input_data={"text": "x"}, user=None) for w in (first, second) * 7]
    spread(runs)
    run_counts_fold()
    assert RunCountDelta.objects.count() == 0
    assert RunCount.objects.filter(grain="d", workflow_id=first.id).count() > 1
    for params in filters(workflows):
        assert run_total(
            statuses=params["status"],
            workflow_id=params["workflow_id"],
            created_after=params.get("created_after"),
            created_before=params.get("created_before"),
        ) == expected(params), params
    # A range inside one hour, on hour boundaries, and an empty one.
    hour = NOW.replace(minute=0)
    for low, high in ((NOW - timedelta(minutes=5), NOW), (hour - timedelta(hours=6), hour), (NOW, NOW)):
        params = {"created_after": low, "created_before": high}
        assert run_total(created_after=low, created_before=high) == expected(params)


@postgresql
def test_rebuild_repairs_the_counters(viewer, workflows):
    runs = [run_execute(workflow=w, input_data={"text": "x"}, user=None) for w in workflows * 3]
    spread(runs)
    RunCount.objects.all().delete()  # lost counters (a restore without them, say)
    RunCountDelta.objects.all().delete()
    assert run_total() == 0
    assert run_counts_rebuild() == 6
    assert_exact(viewer, workflows)
    call_command("run_counts_rebuild", "--fold")


@postgresql
@pytest.mark.django_db(transaction=True)
def test_truncating_the_runs_empties_the_counters(workflows):
    run_execute(workflow=workflows[0], input_data={"text": "x"}, user=None)
    run_counts_fold()
    assert run_total() == 1
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE runs_run CASCADE")
    assert run_total() == 0 and not RunCount.objects.exists()


def test_other_filters_are_counted_from_the_rows(viewer, workflows):
    first, _ = workflows
    runs = [run_execute(workflow=first, input_data={"text": "x"}, user=None) for _ in range(3)]
    Run.objects.filter(pk=runs[0].pk).update(waiting_for_input=True)
    page = viewer.get(f"/api/v1/runs?page_size=1&waiting_for_input=true&workflow_id={first.id}").json()
    assert page["total"] == 1
    other = workflow_create(user=None, definition={**first.definition, "name": "other"})
    page = viewer.get(f"/api/v1/runs?page_size=1&workflow_id={first.id}&workflow_definition_id={other.id}").json()
    assert page["total"] == 0
    assert viewer.get(f"/api/v1/runs?page_size=1&workflow_definition_id={first.id}").json()["total"] == 3
