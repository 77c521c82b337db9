"""Human input as a run state: an agent asks (INPUT_REQUIRED), the run waits, a person answers through
`POST /runs/{id}/steps/{sid}/respond` or the admin, and the reply goes to the agent in its same task.
Driven through the executor's handlers (the Kafka messages), the HTTP API and the admin."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from core.models import OutboxMessage
from runs.choices import RunStatus, StepStatus
from runs.executor import overdue_handle
from runs.models import Event, StepExecution
from runs.resend import RESEND_LOCK, inflight_resend
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_executor import fresh, result, send, start, tasks
from webhooks.models import Delivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
QUESTION = {"state": "input-required", "message": "Which city?", "data": {"choices": ["Paris", "Rome"]}}


def asking(task, output=None, **extra) -> list:
    """The bridge's result for an agent whose task waits for a person."""
    message = {
        "run_id": task["run_id"],
        "task_id": task["task_id"],
        "correlation_id": task["correlation_id"],
        "status": "INPUT_REQUIRED",
        "output_data": output or QUESTION,
        "error_message": None,
        "timestamp": "2026-11-26T00:00:00Z",
        "duration_ms": 5,
        "agent_task_id": "a2a-task-1",
        "agent_context_id": "a2a-ctx-1",
        **extra,
    }
    return send(settings.KAFKA_RESULTS_TOPIC, message)


def waiting_run(**step_overrides):
    """A run whose first step (agent 'ask') waits for input; the second ('next') follows."""
    workflow = workflow_with_agents("ask", "next", s1=step_overrides)
    run = run_execute(workflow=workflow, input_data={"text": "trip"}, user=None)
    [task] = tasks(start(run))
    sent = asking(task)
    step = StepExecution.objects.get(run=run, step_id="s1")
    return run, task, step, sent


def respond(client, run, step, body):
    return client.post(f"/api/v1/runs/{run.id}/steps/{step.id}/respond", body, format="json")


def reply_tasks() -> list[dict]:
    found = OutboxMessage.objects.filter(topic=settings.KAFKA_TASKS_TOPIC).order_by("id")
    return [m.payload for m in found if "reply" in m.payload]


def test_an_agent_asking_for_input_makes_the_step_wait_and_the_run_show_it(viewer):
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", event_types=["step.input_required"])
    before = timezone.now()
    run, _, step, sent = waiting_run()
    assert not tasks(sent)  # nothing is dispatched while the person thinks
    assert step.status == StepStatus.INPUT_REQUIRED and step.completed_at is None
    assert step.input_request["state"] == "input-required" and step.input_request["message"] == "Which city?"
    assert step.input_request["data"] == {"choices": ["Paris", "Rome"]} and step.input_request["requested_at"]
    assert (step.agent_task_id, step.agent_context_id) == ("a2a-task-1", "a2a-ctx-1")
    # The default wait is a day (input_timeout_seconds), not the agent's timeout.
    assert timedelta(seconds=86_390) < step.due_at - before < timedelta(seconds=86_410)
    assert fresh(run).status == RunStatus.RUNNING and fresh(run).waiting_for_input is True

    event = Event.objects.get(run=run, type="step.input_required")
    assert event.step_execution_id == step.id and event.data["step"]["input_request"]["message"] == "Which city?"
    assert Delivery.objects.filter(endpoint=endpoint, event_type="step.input_required").count() == 1

    body = viewer.get(f"/api/v1/runs/{run.id}").json()
    assert body["waiting_for_input"] is True and body["status"] == "RUNNING"
    [listed] = viewer.get(f"/api/v1/runs/{run.id}/steps?status=INPUT_REQUIRED").json()["items"]
    assert listed["input_request"]["state"] == "input-required" and listed["agent_task_id"] == "a2a-task-1"
    assert listed["agent_context_id"] == "a2a-ctx-1"

    other = run_execute(workflow=run.workflow, input_data={"text": "x"}, user=None)
    waiting = [r["id"] for r in viewer.get("/api/v1/runs?waiting_for_input=true").json()["items"]]
    not_waiting = [r["id"] for r in viewer.get("/api/v1/runs?waiting_for_input=false").json()["items"]]
    assert waiting == [str(run.id)] and not_waiting == [str(other.id)]
    assert viewer.get("/api/v1/runs?waiting_for_input=maybe").status_code == 422


def test_auth_required_and_a_step_input_timeout_are_kept():
    workflow = workflow_with_agents("ask", s1={"input_timeout_seconds": 120})
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    asking(task, {"state": "auth-required", "message": "Sign in at https://example.test", "data": {}})
    step = StepExecution.objects.get(run=run)
    assert step.input_request["state"] == "auth-required"
    assert timedelta(seconds=110) < step.due_at - timezone.now() <= timedelta(seconds=120)


def test_respond_sends_the_reply_in_the_same_task_and_the_step_goes_on(operator):
    run, task, step, _ = waiting_run()
    response = respond(operator, run, step, {"text": "Rome", "data": {"nights": 2}})
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "RUNNING" and response.json()["id"] == str(step.id)
    step.refresh_from_db()
    assert step.status == StepStatus.RUNNING and step.input_request["responded_by"] == "operator-user"
    assert step.due_at > timezone.now() + timedelta(seconds=29)  # a new deadline: the agent's timeout again
    assert fresh(run).waiting_for_input is False

    [reply] = reply_tasks()
    assert reply["correlation_id"] == task["correlation_id"] and reply["task_id"] != task["task_id"]
    assert reply["task_id"] == step.task_id and reply["reply"] == {"text": "Rome", "data": {"nights": 2}}
    assert (reply["agent_task_id"], reply["agent_context_id"]) == ("a2a-task-1", "a2a-ctx-1")
    assert reply["deadline"] > timezone.now().isoformat()[:19]
    audit = AuditEvent.objects.get(action="run.respond")
    assert audit.resource_id == str(run.id) and audit.user == "operator-user"
    assert audit.changes["step_execution_id"] == [None, str(step.id)]

    # A late copy of the question (the old task id) changes nothing; the reply's answer finishes the step.
    assert not tasks(asking(task))
    assert StepExecution.objects.get(pk=step.pk).status == StepStatus.RUNNING
    [following] = tasks(result(reply, {"text": "Rome, 2 nights"}))
    assert following["step_id"] == "s2" and following["input_data"] == {"text": "Rome, 2 nights"}
    assert StepExecution.objects.get(pk=step.pk).status == StepStatus.COMPLETED


def test_the_answer_is_sent_again_after_a_broker_loss_but_never_shown(operator, viewer):
    run, _, step, _ = waiting_run()
    assert respond(operator, run, step, {"text": "Rome"}).status_code == 202
    [reply] = reply_tasks()
    cache.delete(f"{RESEND_LOCK}:0")
    inflight_resend()
    assert reply_tasks() == [reply, {**reply, "timestamp": reply_tasks()[1]["timestamp"]}]  # the same reply
    shown = viewer.get(f"/api/v1/runs/{run.id}/steps").json()["items"][0]["input_request"]
    assert shown["responded_by"] == "operator-user" and "reply" not in shown
    assert "reply" not in Event.objects.filter(run=run, step_execution_id=step.id).last().data["step"]["input_request"]


def test_an_answer_to_a_sign_in_is_not_kept_in_the_audit_trail(operator):
    workflow = workflow_with_agents("ask")
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    asking(task, {"state": "auth-required", "message": "Your token?", "data": {}})
    step = StepExecution.objects.get(run=run)
    assert respond(operator, run, step, {"text": "secret-token"}).status_code == 202
    audit = AuditEvent.objects.get(action="run.respond")
    assert audit.input_data is None and "secret-token" not in str(audit.changes)
    assert [t["reply"]["text"] for t in reply_tasks()] == ["secret-token"]  # the agent gets it


def test_the_agent_may_ask_again_after_an_answer(operator):
    run, _, step, _ = waiting_run()
    assert respond(operator, run, step, {"text": "Rome"}).status_code == 202
    [reply] = reply_tasks()
    asking(reply, {"state": "input-required", "message": "Which hotel?", "data": {}})
    step.refresh_from_db()
    assert step.status == StepStatus.INPUT_REQUIRED and step.input_request["message"] == "Which hotel?"
    assert "responded_at" not in step.input_request and fresh(run).waiting_for_input is True


def test_respond_refuses_what_it_cannot_answer(operator, viewer):
    run, _, step, _ = waiting_run()
    missing = respond(operator, run, step, {})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "text"
    assert respond(operator, run, step, {"text": 3}).status_code == 422
    assert respond(operator, run, step, {"data": [1]}).status_code == 422
    assert respond(operator, run, step, {"text": "x", "extra": 1}).status_code == 422
    assert respond(viewer, run, step, {"text": "x"}).status_code == 403
    assert operator.post(f"/api/v1/runs/{run.id}/steps/nope/respond", {"text": "x"}, format="json").status_code == 404
    assert respond(operator, run, step, {"text": "x"}).status_code == 202
    again = respond(operator, run, step, {"text": "x"})
    assert again.status_code == 409 and "INPUT_REQUIRED" in again.json()["detail"]
    assert AuditEvent.objects.filter(action="run.respond").count() == 1


def test_no_answer_in_time_fails_the_step_and_the_run():
    run, _, step, _ = waiting_run(input_timeout_seconds=60)
    StepExecution.objects.filter(pk=step.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    sent: list = []
    overdue_handle(sent)
    step.refresh_from_db()
    assert step.status == StepStatus.FAILED and "no input within 60 s" in step.error_message
    [cancel] = [m.payload for m in sent if m.payload.get("message_type") == "agent_task_cancel"]
    assert cancel["agent_task_id"] == "a2a-task-1" and cancel["correlation_id"] == step.correlation_id
    run = fresh(run)
    assert run.status == RunStatus.FAILED and run.waiting_for_input is False
    assert not StepExecution.objects.filter(run=run, step_id="s1", try_number=2).exists()  # not asked again


def test_cancel_cancels_the_waiting_step_and_retry_starts_clean(operator):
    run, _, step, _ = waiting_run()
    assert operator.post(f"/api/v1/runs/{run.id}/cancel", {}, format="json").status_code == 200
    step.refresh_from_db()
    assert step.status == StepStatus.CANCELLED and step.duration_ms is not None
    assert Event.objects.filter(run=run, type="step.cancelled", step_execution_id=step.id).exists()
    assert fresh(run).waiting_for_input is False
    cancels = OutboxMessage.objects.filter(topic=settings.KAFKA_TASKS_TOPIC, payload__message_type="agent_task_cancel")
    assert [m.payload["agent_task_id"] for m in cancels] == ["a2a-task-1"]  # the agent's open task is cancelled too
    assert respond(operator, run, step, {"text": "late"}).status_code == 409

    assert operator.post(f"/api/v1/runs/{run.id}/retry").status_code == 202
    [task] = tasks(start(run))
    assert task["step_id"] == "s1" and fresh(run).waiting_for_input is False


def test_the_step_input_timeout_is_validated(editor):
    workflow = workflow_with_agents("ask")
    ok = {"s1": {**workflow.definition["steps"]["s1"], "input_timeout_seconds": 2_592_000}}
    assert editor.patch(f"/api/v1/workflows/{workflow.id}", {"steps": ok}, format="json").status_code == 200
    for bad in (0, 2_592_001, "60", 1.5):
        steps = {"s1": {**workflow.definition["steps"]["s1"], "input_timeout_seconds": bad}}
        response = editor.patch(f"/api/v1/workflows/{workflow.id}", {"steps": steps}, format="json")
        assert response.status_code == 422, (bad, response.content)
        fields = [e["field"] for e in response.json()["errors"]]
        assert any(f.endswith("steps.s1.input_timeout_seconds") for f in fields), fields


def test_the_webhook_event_type_can_be_subscribed(admin):
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["step.input_required"]}
    response = admin.post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 201, response.content


# -- the admin ---------------------------------------------------------------------------------------


def staff(username: str, group: str | None = None) -> Client:
    User = get_user_model()
    if group is None:
        User.objects.create_superuser(username, "", "pw-123456-long")
    else:
        user = User.objects.create_user(username, "", "pw-123456-long", is_staff=True)
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    client = Client()
    assert client.login(username=username, password="pw-123456-long")
    return client


def test_the_admin_lists_waiting_runs_and_answers_through_the_service():
    boss = staff("boss")
    run, task, step, _ = waiting_run()
    other = run_execute(workflow=run.workflow, input_data={"text": "x"}, user=None)
    listed = boss.get("/admin/runs/run/?waiting_for_input=yes").content.decode()
    assert str(run.id) in listed and str(other.id) not in listed
    page = boss.get(f"/admin/runs/run/{run.id}/change/").content.decode()
    assert "Answer the agent" in page and "Which city?" in page
    form = boss.get(f"/admin/runs/stepexecution/{step.id}/respond/")
    assert form.status_code == 200 and "Which city?" in form.content.decode()

    empty = boss.post(f"/admin/runs/stepexecution/{step.id}/respond/", {"text": "", "data": ""})
    assert empty.status_code == 200 and "Give a text or data" in empty.content.decode()
    answered = boss.post(
        f"/admin/runs/stepexecution/{step.id}/respond/", {"text": "Paris", "data": '{"nights": 1}'}, follow=True
    )
    assert answered.status_code == 200 and "Answer sent" in answered.content.decode()
    assert StepExecution.objects.get(pk=step.pk).status == StepStatus.RUNNING
    detail = boss.get(f"/admin/runs/stepexecution/{step.id}/change/").content.decode()
    assert "Which city?" in detail and "responded_by" in detail and "nights" not in detail  # the answer is not shown
    [reply] = reply_tasks()
    assert (
        reply["reply"] == {"text": "Paris", "data": {"nights": 1}} and reply["correlation_id"] == task["correlation_id"]
    )
    assert AuditEvent.objects.get(action="run.respond").user == "boss"

    again = boss.post(f"/admin/runs/stepexecution/{step.id}/respond/", {"text": "Rome"}, follow=True)
    assert "INPUT_REQUIRED" in again.content.decode()  # the service's 409, shown as a message
    assert len(reply_tasks()) == 1


def test_the_admin_answer_needs_the_operator_role():
    run, _, step, _ = waiting_run()
    viewer = staff("looker", group="viewer")
    assert viewer.post(f"/admin/runs/stepexecution/{step.id}/respond/", {"text": "x"}).status_code == 403
    assert StepExecution.objects.get(pk=step.pk).status == StepStatus.INPUT_REQUIRED
