"""Pause and resume, through the API and the executor's handlers: what a paused run records, what it
holds back, and what resume sends."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audit.models import AuditEvent
from core.models import OutboxMessage
from runs.choices import RunStatus, StepStatus
from runs.executor import overdue_handle
from runs.models import Event, Run, StepExecution
from runs.services import run_execute
from runs.tasks import runs_recover
from tests.factories import AgentFactory
from tests.runs.helpers import chain, workflow_with_agents
from tests.runs.test_blocks import doubling, loop_workflow, parallel_workflow
from tests.runs.test_executor import fresh, result, start, tasks
from webhooks.models import Delivery
from webhooks.services import webhook_create
from workflows.services import workflow_create

pytestmark = pytest.mark.django_db


def pause(client, run):
    return client.post(f"/api/v1/runs/{run.id}/pause")


def resume(client, run):
    return client.post(f"/api/v1/runs/{run.id}/resume")


def statuses(run) -> list[tuple[str, str]]:
    rows = StepExecution.objects.filter(run=run).order_by("created_at", "id")
    return [(row.step_id, row.status) for row in rows]


def test_a_step_in_flight_is_recorded_and_what_follows_waits_for_resume(operator):
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    response = pause(operator, run)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "PAUSED" and response.json()["message"] == "Run paused"
    assert fresh(run).lease_expires_at is None

    assert tasks(result(task, {"text": "y"})) == []  # recorded, s2 not dispatched
    assert statuses(run) == [("s1", "COMPLETED"), ("s2", "PENDING")]
    assert StepExecution.objects.get(run=run, step_id="s1").output_data == {"text": "y"}
    assert fresh(run).status == RunStatus.PAUSED

    response = resume(operator, run)
    assert response.status_code == 200 and response.json()["status"] == "RUNNING"
    [task2] = tasks(start(run))  # the execution request resume queued
    assert task2["step_id"] == "s2" and task2["input_data"] == {"text": "y"}
    result(task2, {"text": "z"})
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED and run.output_data == {"text": "z"}
    assert statuses(run) == [("s1", "COMPLETED"), ("s2", "COMPLETED")]
    actions = AuditEvent.objects.filter(resource_id=str(run.id)).values_list("action", flat=True)
    assert {"run.pause", "run.resume"} <= set(actions)
    types = list(Event.objects.filter(run=run).values_list("type", flat=True))
    assert types.index("run.paused") < types.index("run.resumed") < types.index("run.completed")


def test_pause_and_resume_refuse_runs_in_the_wrong_status(operator, viewer):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    response = resume(operator, run)
    assert response.status_code == 409
    assert response.json()["detail"] == "Only PAUSED runs can be resumed; this run is PENDING."
    [task] = tasks(start(run))
    assert resume(operator, run).status_code == 409  # RUNNING
    assert pause(viewer, run).status_code == 403
    result(task, {"text": "done"})
    response = pause(operator, run)
    assert response.status_code == 409
    assert "Only PENDING or RUNNING runs can be paused; this run is COMPLETED" in response.json()["detail"]
    assert pause(operator, run).json()["error"] == "conflict"


def test_a_run_paused_before_it_started_is_started_by_resume(operator):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    assert pause(operator, run).status_code == 200
    assert tasks(start(run)) == []  # its execution request arrives: ignored while paused
    assert fresh(run).status == RunStatus.PAUSED and not StepExecution.objects.filter(run=run).exists()
    assert resume(operator, run).status_code == 200
    [task] = tasks(start(run))
    assert task["step_id"] == "s1"
    result(task, {"text": "y"})
    assert fresh(run).status == RunStatus.COMPLETED


def test_cancel_from_paused_and_retry_refused(operator):
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    pause(operator, run)
    result(task, {"text": "y"})  # s2 held
    assert operator.post(f"/api/v1/runs/{run.id}/retry").status_code == 409
    response = operator.post(f"/api/v1/runs/{run.id}/cancel", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    assert statuses(run) == [("s1", "COMPLETED"), ("s2", "CANCELLED")]
    assert resume(operator, run).status_code == 409


def test_a_paused_run_is_left_alone_by_recovery_and_the_deadline_pass(operator):
    AgentFactory(name="slow", retry_config={"max_retries": 1, "initial_delay_ms": 0, "max_delay_ms": 0})
    definition = chain("slow", "b", name="paused-deadlines", s1={"timeout_seconds": 2})
    AgentFactory(name="b")
    run = run_execute(workflow=workflow_create(user=None, definition=definition), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    pause(operator, run)
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=5))
    before = OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC).count()
    assert runs_recover() == 0
    assert OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC).count() == before

    # The try in flight still times out; its retry is scheduled but not sent while paused.
    StepExecution.objects.filter(run=run).update(due_at=timezone.now() - timedelta(seconds=1))
    sent: list = []
    overdue_handle(sent)
    overdue_handle(sent)
    assert tasks(sent) == []
    tries = StepExecution.objects.filter(run=run).order_by("try_number").values_list("try_number", "status")
    assert list(tries) == [(1, "FAILED"), (2, "PENDING")]
    assert fresh(run).status == RunStatus.PAUSED

    resume(operator, run)
    [retry] = tasks(start(run))  # the retry that came due meanwhile goes at resume
    assert retry["step_id"] == "s1" and retry["correlation_id"] != task["correlation_id"]
    [task2] = tasks(result(retry, {"text": "y"}))
    assert task2["step_id"] == "s2" and task2["input_data"] == {"text": "y"}


def test_a_failure_while_paused_fails_the_run_at_resume(operator):
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    pause(operator, run)
    result(task, error="Agent returned HTTP 500")
    assert fresh(run).status == RunStatus.PAUSED  # decided at resume, not while paused
    resume(operator, run)
    start(run)
    run = fresh(run)
    assert run.status == RunStatus.FAILED and run.error_message == "Step 's1' failed: Agent returned HTTP 500"


def test_parallel_children_are_held_and_the_block_completes_after_resume(operator):
    run = run_execute(workflow=parallel_workflow(max_parallelism=2), input_data={}, user=None)
    first = tasks(start(run))
    assert [t["step_id"] for t in first] == ["a", "b"]
    pause(operator, run)
    assert tasks(result(first[0], first[0]["input_data"])) == []  # c would start now: held
    assert tasks(result(first[1], first[1]["input_data"])) == []
    assert dict(statuses(run))["c"] == StepStatus.PENDING
    resume(operator, run)
    [third] = tasks(start(run))
    assert third["step_id"] == "c"
    [after] = tasks(result(third, third["input_data"]))
    assert after["step_id"] == "after"
    result(after, {"done": True})
    assert fresh(run).status == RunStatus.COMPLETED


def test_paused_and_resumed_are_events_and_webhooks(operator):
    hook = webhook_create(
        user=None, data={"url": "http://127.0.0.1:9/hook", "event_types": ["run.paused", "run.resumed"]}
    )
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    start(run)
    pause(operator, run)
    resume(operator, run)
    events = Event.objects.filter(run=run, type__in=["run.paused", "run.resumed"]).order_by("id")
    assert [(e.type, e.data["status"]) for e in events] == [("run.paused", "PAUSED"), ("run.resumed", "RUNNING")]
    deliveries = Delivery.objects.filter(endpoint=hook).order_by("event_id").values_list("event_type", flat=True)
    assert list(deliveries) == ["run.paused", "run.resumed"]
    monitoring = [
        m.payload for m in OutboxMessage.objects.filter(topic=settings.KAFKA_MONITORING_TOPIC, key=str(run.id))
    ]
    assert [m["status"] for m in monitoring if m["step_id"] == "workflow"][-2:] == ["PAUSED", "RUNNING"]


def test_loop_iterations_wait_while_paused(operator):
    run = run_execute(workflow=loop_workflow(), input_data={"items": [{"v": 1}, {"v": 2}]}, user=None)
    [double] = tasks(start(run))
    pause(operator, run)
    output, _ = doubling(double)
    assert tasks(result(double, output)) == []  # the body's next step waits
    resume(operator, run)
    queue = tasks(start(run))
    assert [t["step_id"] for t in queue] == ["label"]
    seen = []
    while queue:
        task = queue.pop(0)
        seen.append(task["step_id"])
        if task["step_id"] == "label" and len(seen) == 1:
            pause(operator, run)  # the second iteration must not start while paused
            assert tasks(result(task, doubling(task)[0])) == []
            resume(operator, run)
            queue.extend(tasks(start(run)))
            continue
        queue.extend(tasks(result(task, doubling(task)[0])))
    assert seen == ["label", "double", "label", "report"]
    run = fresh(run)
    assert run.status == RunStatus.COMPLETED
    assert [i and i["doubled"] for i in run.output_data["loop"]["iterations"]] == [2, 4]
