"""Every endpoint x every role: 401 without credentials, 403 below the needed role, 2xx at or above it.

The matrix is checked against the OpenAPI schema, so a new endpoint cannot be added without a row here.
"""

import pytest
from drf_spectacular.generators import SchemaGenerator

from audit.models import AuditEvent
from core.roles import RANK, Role
from runs.choices import RunStatus
from runs.models import Run, StepExecution
from runs.services import run_execute
from schedules.services import schedule_create
from tests.conftest import ROLES
from tests.factories import AgentFactory
from webhooks.services import webhook_create, webhook_test
from workflows.services import workflow_create

pytestmark = pytest.mark.django_db

AGENT_BODY = {"name": "matrix-agent", "url": "http://127.0.0.1:1/"}
WEBHOOK_BODY = {"url": "http://127.0.0.1:1/hook", "event_types": ["run.*"]}
SCHEDULE_WORKFLOW_ID = "00000000-0000-4000-8000-00000000005c"  # made by resolve() for the schedule rows
SCHEDULE_BODY = {"name": "matrix-schedule", "workflow_id": SCHEDULE_WORKFLOW_ID, "cron": "*/5 * * * *"}
WORKFLOW_BODY = {
    "name": "matrix-workflow",
    "start_step": "only",
    "steps": {"only": {"id": "only", "agent_name": "matrix-target", "input_mapping": {}, "next_step": None}},
}


# (method, schema path, needed role, body, expected success status)
MATRIX = [
    ("get", "/api/v1/agents", Role.VIEWER, None, 200),
    ("post", "/api/v1/agents", Role.EDITOR, AGENT_BODY, 201),
    ("get", "/api/v1/agents/{id}", Role.VIEWER, None, 200),
    ("put", "/api/v1/agents/{id}", Role.EDITOR, AGENT_BODY, 200),
    ("patch", "/api/v1/agents/{id}", Role.EDITOR, {"description": "x"}, 200),
    ("delete", "/api/v1/agents/{id}", Role.EDITOR, None, 204),
    ("get", "/api/v1/agents/{id}/health", Role.VIEWER, None, 200),
    ("get", "/api/v1/api-keys", Role.ADMIN, None, 200),
    ("post", "/api/v1/api-keys", Role.ADMIN, {"name": "k", "role": "viewer"}, 201),
    ("get", "/api/v1/api-keys/{id}", Role.ADMIN, None, 200),
    ("post", "/api/v1/api-keys/{id}/revoke", Role.ADMIN, None, 200),
    ("get", "/api/v1/workflows", Role.VIEWER, None, 200),
    ("post", "/api/v1/workflows", Role.EDITOR, WORKFLOW_BODY, 201),
    ("post", "/api/v1/workflows/validate", Role.VIEWER, WORKFLOW_BODY, 200),
    ("get", "/api/v1/workflows/{id}", Role.VIEWER, None, 200),
    ("put", "/api/v1/workflows/{id}", Role.EDITOR, {**WORKFLOW_BODY, "description": "changed"}, 200),
    ("patch", "/api/v1/workflows/{id}", Role.EDITOR, {"description": "changed"}, 200),
    ("delete", "/api/v1/workflows/{id}", Role.EDITOR, None, 204),
    ("get", "/api/v1/workflows/{id}/versions", Role.VIEWER, None, 200),
    ("get", "/api/v1/workflows/{id}/versions/{version}", Role.VIEWER, None, 200),
    ("post", "/api/v1/workflows/{id}/execute", Role.OPERATOR, {"input_data": {}}, 202),
    ("get", "/api/v1/runs", Role.VIEWER, None, 200),
    ("get", "/api/v1/runs/{id}", Role.VIEWER, None, 200),
    ("get", "/api/v1/runs/{id}/steps", Role.VIEWER, None, 200),
    ("get", "/api/v1/runs/{id}/logs", Role.VIEWER, None, 200),
    ("post", "/api/v1/runs/{id}/retry", Role.OPERATOR, None, 202),
    ("post", "/api/v1/runs/{id}/rerun", Role.OPERATOR, {}, 202),
    ("post", "/api/v1/runs/{id}/cancel", Role.OPERATOR, {}, 200),
    ("post", "/api/v1/runs/{id}/pause", Role.OPERATOR, None, 200),
    ("post", "/api/v1/runs/{id}/resume", Role.OPERATOR, None, 200),
    ("post", "/api/v1/runs/{id}/steps/{step_execution_id}/respond", Role.OPERATOR, {"text": "ok"}, 202),
    ("get", "/api/v1/runs/{id}/events", Role.VIEWER, None, 200),  # Server-Sent Events (runs/api/stream.py)
    ("get", "/api/v1/events", Role.VIEWER, None, 200),
    ("get", "/api/v1/webhooks", Role.ADMIN, None, 200),
    ("post", "/api/v1/webhooks", Role.ADMIN, WEBHOOK_BODY, 201),
    ("get", "/api/v1/webhooks/{id}", Role.ADMIN, None, 200),
    ("put", "/api/v1/webhooks/{id}", Role.ADMIN, WEBHOOK_BODY, 200),
    ("patch", "/api/v1/webhooks/{id}", Role.ADMIN, {"description": "x"}, 200),
    ("delete", "/api/v1/webhooks/{id}", Role.ADMIN, None, 204),
    ("post", "/api/v1/webhooks/{id}/rotate-secret", Role.ADMIN, None, 200),
    ("post", "/api/v1/webhooks/{id}/test", Role.ADMIN, None, 202),
    ("get", "/api/v1/webhooks/{id}/deliveries", Role.ADMIN, None, 200),
    ("post", "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", Role.ADMIN, None, 202),
    ("get", "/api/v1/schedules", Role.VIEWER, None, 200),
    ("post", "/api/v1/schedules", Role.EDITOR, SCHEDULE_BODY, 201),
    ("get", "/api/v1/schedules/{id}", Role.VIEWER, None, 200),
    ("put", "/api/v1/schedules/{id}", Role.EDITOR, SCHEDULE_BODY, 200),
    ("patch", "/api/v1/schedules/{id}", Role.EDITOR, {"cron": "0 * * * *"}, 200),
    ("delete", "/api/v1/schedules/{id}", Role.EDITOR, None, 204),
    ("get", "/api/v1/audit-logs", Role.ADMIN, None, 200),
    ("get", "/api/v1/audit-logs/{id}", Role.ADMIN, None, 200),
]
PUBLIC = {("post", "/api/v1/auth/token"), ("post", "/api/v1/auth/token/refresh"), ("get", "/api/v1")}


def resolve(path, client):
    AgentFactory(name="matrix-target")
    if path.startswith("/api/v1/schedules"):
        workflow = workflow_create(
            user=None, definition={**WORKFLOW_BODY, "name": "matrix-scheduled"}, workflow_id=SCHEDULE_WORKFLOW_ID
        )
        if "{id}" in path:  # one to read, change or delete
            data = {**SCHEDULE_BODY, "name": "matrix-existing", "workflow_id": workflow.pk}
            return path.replace("{id}", str(schedule_create(user=None, data=data).id))
    if "{id}" not in path:
        return path
    if path.startswith("/api/v1/agents"):
        return path.replace("{id}", str(AgentFactory(url="http://127.0.0.1:1/").id))
    if path.startswith("/api/v1/workflows"):
        workflow = workflow_create(user=None, definition={**WORKFLOW_BODY, "name": "matrix-existing"})
        return path.replace("{id}", str(workflow.id)).replace("{version}", "1")
    if path.startswith("/api/v1/runs"):
        workflow = workflow_create(user=None, definition={**WORKFLOW_BODY, "name": "matrix-run"})
        run = run_execute(workflow=workflow, input_data={}, user=None)
        # retry needs a finished run, cancel an active one
        if path.endswith(("/retry", "/rerun")):
            Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
        if path.endswith("/resume"):
            Run.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)
        if path.endswith("/respond"):  # a running run with a step waiting for input
            Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
            step = StepExecution.objects.create(
                run=run, step_id="only", agent_name="matrix-target", status="INPUT_REQUIRED", timeout_ms=30000
            )
            path = path.replace("{step_execution_id}", str(step.id))
        return path.replace("{id}", str(run.id))
    if path.startswith("/api/v1/webhooks"):
        endpoint = webhook_create(user=None, data=WEBHOOK_BODY)
        delivery = webhook_test(endpoint=endpoint, user=None)  # queued; sent only after a commit
        return path.replace("{id}", str(endpoint.id)).replace("{delivery_id}", str(delivery.id))
    if path.startswith("/api/v1/audit-logs"):
        event = AuditEvent.objects.create(action="test.event", resource_type="test", resource_id="1")
        return path.replace("{id}", str(event.id))
    return path.replace("{id}", str(client.api_key.pk))  # a key that exists: the caller's own


def call(client, method, path, body):
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


@pytest.mark.parametrize(("method", "path", "needed", "body", "ok"), MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
@pytest.mark.parametrize("role", [None, *ROLES], ids=["anonymous", *[r.value for r in ROLES]])
def test_endpoint_role(anon, client_for, role, method, path, needed, body, ok):
    client = client_for(role) if role else anon
    if role is None:
        viewer = client_for(Role.VIEWER)
        response = call(anon, method, resolve(path, viewer), body)
        assert response.status_code == 401
        assert response["WWW-Authenticate"]
        return
    response = call(client, method, resolve(path, client), body)
    if RANK[role] >= RANK[needed]:
        assert response.status_code == ok, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "permission_denied"


def test_matrix_covers_every_operation():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        (method, path)
        for path, item in schema["paths"].items()
        if path.startswith("/api/")
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations == {(m, p) for m, p, *_ in MATRIX} | PUBLIC
