"""The events table: one row per run or step status change, in order, in the change's transaction,
with the body receivers get."""

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from runs import events as run_events
from runs.models import Event
from runs.services import run_cancel, run_execute, run_retry
from tests.conftest import make_user
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_blocks import conditional_workflow, drive
from tests.runs.test_executor import result, start, tasks

pytestmark = pytest.mark.django_db


def kinds(run):
    return [(e.type, (e.data.get("step") or {}).get("step_id")) for e in Event.objects.filter(run=run)]


def test_a_run_leaves_one_event_per_status_change_in_order():
    run = run_execute(workflow=workflow_with_agents("upper", "count"), input_data={"text": "a b"}, user=None)
    [task] = tasks(start(run))
    [task2] = tasks(result(task, {"text": "A B"}))
    result(task2, {"count": 2})
    assert kinds(run) == [
        ("run.pending", None),
        ("run.running", None),
        ("step.running", "s1"),
        ("step.completed", "s1"),
        ("step.running", "s2"),
        ("step.completed", "s2"),
        ("run.completed", None),
    ]
    ids = list(Event.objects.filter(run=run).values_list("id", flat=True))
    assert ids == sorted(ids)
    last = Event.objects.filter(run=run).last()
    client = APIClient()
    client.force_authenticate(make_user("reader", "viewer"))
    assert last.data == client.get(f"/api/v1/runs/{run.id}").json()  # the same representation as the API
    body = last.body()
    assert body["type"] == "run.completed" and body["timestamp"].endswith("Z") and body["data"]["status"] == "COMPLETED"
    step = Event.objects.get(run=run, type="step.completed", data__step__step_id="s2")
    assert step.data["step"]["output_data"] == {"count": 2} and step.data["workflow_id"] == str(run.workflow_id)
    assert str(step.step_execution_id) == step.data["step"]["id"]


def test_cancel_and_retry_are_events_too():
    run = run_execute(workflow=workflow_with_agents("slowpoke"), input_data={"text": "x"}, user=None)
    start(run)
    run_cancel(run=run, user=None)
    assert kinds(run)[-2:] == [("step.cancelled", "s1"), ("run.cancelled", None)]
    run = run_retry(run=run, user=None)
    assert kinds(run)[-1] == ("run.pending", None)
    assert Event.objects.filter(run=run).last().data["attempt"] == 2


def test_the_branch_not_taken_is_a_skipped_event():
    run = run_execute(workflow=conditional_workflow(), input_data={"score": 0.9}, user=None)
    drive(run)
    assert ("step.skipped", "no") in kinds(run)
    assert ("step.completed", "check") in kinds(run)


def test_sinks_see_the_events_inside_the_transaction_of_the_change(monkeypatch):
    seen = []

    def sink(events):
        seen.append(([e.type for e in events], all(e.id for e in events), transaction.get_connection().in_atomic_block))

    monkeypatch.setattr(run_events, "_sinks", [sink])
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    start(run)
    assert seen[0] == (["run.pending"], True, True)
    assert seen[1] == (["run.running", "step.running"], True, True)  # one bulk insert per executor message


def test_a_failing_sink_rolls_the_change_back(monkeypatch):
    def broken(events):
        raise RuntimeError("sink down")

    monkeypatch.setattr(run_events, "_sinks", [broken])
    workflow = workflow_with_agents("b")
    with pytest.raises(RuntimeError):
        run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    assert not Event.objects.exists() and not workflow.runs.exists()


def test_old_events_are_purged_in_batches_with_what_was_made_from_them(settings):
    from datetime import timedelta

    from django.utils import timezone

    from runs.tasks import events_purge_old

    run = run_execute(workflow=workflow_with_agents("old"), input_data={"text": "x"}, user=None)
    start(run)
    old = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS + 1)
    Event.objects.filter(type="run.pending").update(created_at=old)
    kept = Event.objects.exclude(type="run.pending").count()
    assert events_purge_old(batch=1) == 1
    assert Event.objects.count() == kept and not Event.objects.filter(type="run.pending").exists()
