import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from core.db import server_side_binding
from core.models import OutboxMessage
from core.outbox import _notify_worker
from runs.choices import RunStatus
from runs.models import Event, Run, RunLog, StepExecution
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.support.pipelines import pipelines_counted
from workflows.services import workflow_delete, workflow_update

pytestmark = pytest.mark.django_db
SCHEMA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "minLength": 2}}}


def execute(client, workflow, input_data=None, **extra):
    body = {"input_data": input_data if input_data is not None else {"text": "hi"}, **extra}
    return client.post(f"/api/v1/workflows/{workflow.id}/execute", body, format="json")


def test_execute_answers_202_with_a_pending_run_and_queues_the_request(operator):
    workflow = workflow_with_agents("a", "b", input_schema=SCHEMA)
    response = execute(operator, workflow, {"text": "hello"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING" and body["run_id"] == body["id"]
    assert body["workflow_version"] == 1 and body["attempt"] == 1 and body["triggered_by"] == "operator-user"
    run = Run.objects.get(pk=body["id"])
    assert run.plan["steps"].keys() == {"s1", "s2"} and run.plan["workflow_id"] == str(workflow.id)

    request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC)
    assert request.key == str(run.id) and request.sent_at is None
    payload = request.payload
    assert payload["message_type"] == "execution_request" and payload["run_id"] == str(run.id)
    assert payload["input_data"] == {"text": "hello"} and payload["attempt"] == 1
    assert payload["workflow_plan"]["start_step"] == "s1" and payload["message_id"]

    event = AuditEvent.objects.get(action="run.execute")
    assert event.resource_id == str(run.id) and event.input_data == {"text": "hello"} and event.user == "operator-user"
    assert RunLog.objects.filter(run=run, source="api").exists()


def test_the_run_is_pinned_to_the_version_it_started_with(operator):
    workflow = workflow_with_agents("a", "b")
    first = execute(operator, workflow).json()
    workflow_update(workflow=workflow, user=None, definition={**workflow.definition, "description": "v2"})
    second = execute(operator, workflow).json()
    assert (first["workflow_version"], second["workflow_version"]) == (1, 2)
    assert Run.objects.get(pk=first["id"]).plan["version"] == 1


def test_input_not_matching_the_schema_is_422_with_paths_and_creates_nothing(operator):
    workflow = workflow_with_agents("a", input_schema=SCHEMA)
    response = execute(operator, workflow, {"text": "x", "extra": 1})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"input_data.text"}
    missing = execute(operator, workflow, {})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "input_data"
    assert "'text' is a required property" in missing.json()["errors"][0]["message"]
    assert not Run.objects.exists() and not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"input_data": [1]}, "input_data"), ({"input_data": {}, "priority": 1}, "priority")],
)
def test_bad_execute_bodies_are_422(operator, body, field):
    workflow = workflow_with_agents("a")
    response = operator.post(f"/api/v1/workflows/{workflow.id}/execute", body, format="json")
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


def test_without_a_body_the_input_is_empty(operator):
    workflow = workflow_with_agents("a")
    response = operator.post(f"/api/v1/workflows/{workflow.id}/execute")
    assert response.status_code == 202 and response.json()["input_data"] == {}


def test_inactive_workflow_is_409_and_deleted_or_unknown_404(operator):
    workflow = workflow_with_agents("a")
    workflow_update(workflow=workflow, user=None, definition=workflow.definition, status="inactive")
    response = execute(operator, workflow)
    assert response.status_code == 409 and "inactive" in response.json()["detail"]
    workflow_delete(workflow=workflow, user=None)
    assert execute(operator, workflow).status_code == 404
    unknown = operator.post(f"/api/v1/workflows/{uuid.uuid4()}/execute", {}, format="json")
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("Workflow '")
    malformed = operator.post("/api/v1/workflows/not-a-uuid/execute", {}, format="json")
    assert malformed.status_code == 404 and malformed.json()["detail"] == "Workflow 'not-a-uuid' not found."
    assert not Run.objects.exists()


def test_viewer_cannot_execute(viewer):
    workflow = workflow_with_agents("a")
    assert execute(viewer, workflow).status_code == 403


def test_run_list_filters(operator, viewer):
    first = workflow_with_agents("a", name="first")
    second = workflow_with_agents("b", name="second")
    runs = [run_execute(workflow=w, input_data={"text": "x"}, user=None) for w in (first, first, second)]
    Run.objects.filter(pk=runs[0].pk).update(status=RunStatus.FAILED)
    Run.objects.filter(pk=runs[1].pk).update(status=RunStatus.COMPLETED)

    def ids(query=""):
        response = viewer.get(f"/api/v1/runs{query}")
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [str(r.id) for r in reversed(runs)]
    assert set(ids("?status=FAILED,COMPLETED")) == {str(runs[0].id), str(runs[1].id)}
    assert set(ids("?status=FAILED&status=PENDING")) == {str(runs[0].id), str(runs[2].id)}
    assert set(ids(f"?workflow_id={first.id}")) == {str(runs[0].id), str(runs[1].id)}
    middle = Run.objects.get(pk=runs[1].pk).created_at.isoformat().replace("+00:00", "Z")
    assert set(ids(f"?created_after={middle}")) == {str(runs[1].id), str(runs[2].id)}
    assert ids(f"?created_before={middle}") == [str(runs[0].id)]
    assert ids("?sort_by=created_at&sort_order=asc") == [str(r.id) for r in runs]
    page = viewer.get("/api/v1/runs?page=2&page_size=2").json()
    assert page["total"] == 3 and len(page["items"]) == 1
    for bad in ("?status=DONE", "?workflow_id=nope", "?created_after=yesterday", "?ordering=plan"):
        assert viewer.get(f"/api/v1/runs{bad}").status_code == 422, bad


def test_run_detail_steps_and_logs(viewer):
    workflow = workflow_with_agents("a", "b")
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    StepExecution.objects.create(run=run, step_id="s1", agent_name="a", status="COMPLETED", output_data={"n": 1})
    StepExecution.objects.create(run=run, step_id="s2", agent_name="b", status="FAILED", error_message="boom")
    RunLog.objects.create(run=run, step_id="s2", level="error", source="executor", message="Step 's2' failed")

    detail = viewer.get(f"/api/v1/runs/{run.id}").json()
    assert detail["status"] == "PENDING" and detail["input_data"] == {"text": "x"}
    steps = viewer.get(f"/api/v1/runs/{run.id}/steps").json()["items"]
    assert [(s["step_id"], s["status"], s["output_data"], s["error_message"]) for s in steps] == [
        ("s1", "COMPLETED", {"n": 1}, None),
        ("s2", "FAILED", None, "boom"),
    ]
    assert [s["step_id"] for s in viewer.get(f"/api/v1/runs/{run.id}/steps?step_id=s2").json()["items"]] == ["s2"]
    logs = viewer.get(f"/api/v1/runs/{run.id}/logs").json()
    assert logs["total"] == 2 and logs["items"][0]["source"] == "api"
    errors = viewer.get(f"/api/v1/runs/{run.id}/logs?level=error,warning").json()["items"]
    assert [e["message"] for e in errors] == ["Step 's2' failed"]
    assert viewer.get(f"/api/v1/runs/{run.id}/logs?step_id=s2").json()["total"] == 1
    assert viewer.get(f"/api/v1/runs/{run.id}/logs?level=loud").status_code == 422
    for suffix in ("", "/steps", "/logs"):
        assert viewer.get(f"/api/v1/runs/{uuid.uuid4()}{suffix}").status_code == 404
        assert viewer.get(f"/api/v1/runs/not-a-uuid{suffix}").status_code == 404


def test_cancel_a_pending_run(operator):
    workflow = workflow_with_agents("a")
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    StepExecution.objects.create(run=run, step_id="s1", agent_name="a", status="RUNNING")
    response = operator.post(f"/api/v1/runs/{run.id}/cancel", {"reason": "wrong input"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "CANCELLED" and body["cancelled_by"] == "operator-user" and body["cancelled_at"]
    assert StepExecution.objects.get(run=run).status == "CANCELLED"
    message = OutboxMessage.objects.get(topic=settings.KAFKA_CANCELLATION_TOPIC)
    assert message.payload["message_type"] == "cancellation_request" and message.payload["reason"] == "wrong input"
    assert AuditEvent.objects.filter(action="run.cancel", resource_id=str(run.id)).exists()
    again = operator.post(f"/api/v1/runs/{run.id}/cancel", {}, format="json")
    assert again.status_code == 409 and "CANCELLED" in again.json()["detail"]
    assert operator.post(f"/api/v1/runs/{run.id}/cancel", {"why": 1}, format="json").status_code == 422


def test_retry_only_failed_or_cancelled_runs(operator):
    workflow = workflow_with_agents("a")
    run = run_execute(workflow=workflow, input_data={"text": "x"}, user=None)
    response = operator.post(f"/api/v1/runs/{run.id}/retry")
    assert response.status_code == 409 and "PENDING" in response.json()["detail"]

    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, error_message="Step 's1' failed: boom")
    response = operator.post(f"/api/v1/runs/{run.id}/retry")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING" and body["attempt"] == 2 and body["error_message"] is None
    requests = OutboxMessage.objects.filter(topic=settings.KAFKA_EXECUTION_TOPIC).order_by("id")
    assert [m.payload["attempt"] for m in requests] == [1, 2]
    event = AuditEvent.objects.get(action="run.retry")
    assert event.changes == {"status": ["FAILED", "PENDING"], "attempt": [1, 2]}

    Run.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    assert operator.post(f"/api/v1/runs/{run.id}/retry").status_code == 409


def test_one_relay_request_per_transaction(operator, django_capture_on_commit_callbacks):
    workflow = workflow_with_agents("a")
    with django_capture_on_commit_callbacks() as callbacks:
        assert execute(operator, workflow).status_code == 202
    assert len([c for c in callbacks if c is _notify_worker]) == 1  # (the engine metrics count after it too)


def test_an_execute_writes_its_five_rows_in_one_round_trip(operator, django_capture_on_commit_callbacks):
    workflow = workflow_with_agents("a")
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks() as callbacks,
        pipelines_counted() as pipelines,
    ):
        response = execute(operator, workflow)
    assert response.status_code == 202
    run = Run.objects.get(pk=response.json()["id"])
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("INSERT")]
    if server_side_binding(connection):  # a statement each, all in one pipeline: one round trip
        assert len(inserts) == 5 and pipelines == [1]
    elif connection.vendor == "postgresql":  # one query string; elsewhere each model has its bulk_create
        assert len(inserts) == 1
    if connection.vendor == "postgresql":
        # The agents' statuses and the webhook endpoints: their versions read together, once.
        assert len([q for q in queries.captured_queries if "core_tableversion" in q["sql"]]) == 1
    assert RunLog.objects.filter(run=run, source="api").count() == 1
    assert Event.objects.filter(run_id=run.id, type="run.pending").count() == 1
    assert AuditEvent.objects.filter(action="run.execute", resource_id=str(run.id)).count() == 1
    request = OutboxMessage.objects.get(topic=settings.KAFKA_EXECUTION_TOPIC, key=str(run.id))
    assert request.next_attempt_at <= timezone.now()  # due at once: a worker relays it, asked after commit
    assert [c for c in callbacks if c is _notify_worker] == [_notify_worker]
