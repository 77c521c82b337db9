"""Objects for the fuzz run to reach: each path parameter of /openapi.json gets a real id to use.

Operations that change or remove what they touch (PUT, PATCH, DELETE, revoke) get "scratch" objects of
their own, so that a fuzzed delete or URL change does not turn the other operations' cases into 404s or
send the health check to a random host. Actions on runs get a run in the status they act on.
"""

from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from agents.services import agent_create
from audit.models import AuditEvent
from core.roles import Role
from core.services import api_key_create
from runs.choices import RunStatus, StepStatus
from runs.models import Run, StepExecution
from runs.services import run_execute
from schedules.services import schedule_create
from tests.conftest import make_user
from tests.runs.helpers import chain
from webhooks.models import Delivery
from webhooks.services import webhook_create, webhook_test
from workflows.services import workflow_create, workflow_update

INPUT_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}}


def _run(workflow, status: str, **fields) -> Run:
    run = run_execute(workflow=workflow, input_data={"text": "seed"}, user=None)
    Run.objects.filter(pk=run.pk).update(status=status, started_at=timezone.now(), **fields)
    run.refresh_from_db()
    return run


def seed(agent_url: str) -> dict[str, dict[str, str | int]]:
    """Creates the objects; returns the path parameters to use, per "METHOD path" or per path (as in the
    document) for every method, and a few body values."""
    owner = make_user("fuzz-owner", Role.ADMIN)
    agent = agent_create(user=owner, data={"name": "fuzz-agent", "url": agent_url, "timeout_ms": 2000})
    scratch_agent = agent_create(user=owner, data={"name": "fuzz-scratch-agent", "url": agent_url})

    definition = chain("fuzz-agent", name="fuzz-flow", input_schema=INPUT_SCHEMA)
    workflow = workflow_create(user=owner, definition=definition)
    workflow = workflow_update(workflow=workflow, user=owner, definition={**definition, "description": "v2"})
    scratch_workflow = workflow_create(user=owner, definition=chain("fuzz-agent", name="fuzz-scratch-flow"))

    pending = run_execute(workflow=workflow, input_data={"text": "seed"}, user=None)
    running = _run(workflow, RunStatus.RUNNING, waiting_for_input=True)
    to_pause = _run(workflow, RunStatus.RUNNING)
    paused = _run(workflow, RunStatus.PAUSED)
    failed = _run(workflow, RunStatus.FAILED, error_message="boom", completed_at=timezone.now())
    StepExecution.objects.create(
        run=failed, step_id="s1", agent_name="fuzz-agent", status=StepStatus.FAILED, error_message="boom"
    )
    StepExecution.objects.create(
        run=running, step_id="s1", agent_name="fuzz-agent", status=StepStatus.COMPLETED, output_data={"text": "a"}
    )
    asking = StepExecution.objects.create(
        run=running,
        step_id="s1",
        agent_name="fuzz-agent",
        status=StepStatus.INPUT_REQUIRED,
        attempt=1,
        try_number=2,
        agent_task_id="task-1",
        agent_context_id="ctx-1",
        input_request={"state": "input-required", "message": "Which city?", "requested_at": timezone.now().isoformat()},
    )

    endpoint = webhook_create(user=owner, data={"url": "https://hooks.example.com/in", "event_types": ["*"]})
    scratch_endpoint = webhook_create(user=owner, data={"url": "https://hooks.example.com/x", "event_types": ["*"]})
    delivery = webhook_test(endpoint=endpoint, user=owner)
    Delivery.objects.filter(pk=delivery.pk).update(status="FAILED", last_error="refused")

    schedule = schedule_create(
        user=owner, data={"name": "fuzz-nightly", "workflow_id": workflow.pk, "cron": "0 3 * * *"}
    )
    scratch_schedule = schedule_create(
        user=owner, data={"name": "fuzz-scratch", "workflow_id": workflow.pk, "cron": "*/5 * * * *"}
    )
    kept_key, _ = api_key_create(user=owner, role=Role.VIEWER, name="fuzz kept key")
    scratch_key, _ = api_key_create(user=owner, role=Role.VIEWER, name="fuzz scratch key")
    audit_id = str(AuditEvent.objects.order_by("-created_at").values_list("pk", flat=True).first())

    api = "/api/v1"
    return {
        f"{api}/agents/{{id}}": {"id": str(scratch_agent.pk)},
        f"{api}/agents/{{id}}/health": {"id": str(agent.pk)},
        f"{api}/api-keys/{{id}}": {"id": str(kept_key.pk)},
        f"{api}/api-keys/{{id}}/revoke": {"id": str(scratch_key.pk)},
        f"{api}/audit-logs/{{id}}": {"id": audit_id},
        f"{api}/runs/{{id}}": {"id": str(running.pk)},
        f"{api}/runs/{{id}}/cancel": {"id": str(pending.pk)},
        f"{api}/runs/{{id}}/logs": {"id": str(failed.pk)},
        f"{api}/runs/{{id}}/pause": {"id": str(to_pause.pk)},
        f"{api}/runs/{{id}}/rerun": {"id": str(failed.pk)},
        f"{api}/runs/{{id}}/resume": {"id": str(paused.pk)},
        f"{api}/runs/{{id}}/retry": {"id": str(failed.pk)},
        f"{api}/runs/{{id}}/steps": {"id": str(running.pk)},
        f"{api}/runs/{{id}}/steps/{{step_execution_id}}/respond": {
            "id": str(running.pk),
            "step_execution_id": str(asking.pk),
        },
        f"{api}/schedules/{{id}}": {"id": str(scratch_schedule.pk)},
        f"{api}/webhooks/{{id}}": {"id": str(scratch_endpoint.pk)},
        f"{api}/webhooks/{{id}}/deliveries": {"id": str(endpoint.pk)},
        f"{api}/webhooks/{{id}}/deliveries/{{delivery_id}}/redeliver": {
            "id": str(endpoint.pk),
            "delivery_id": str(delivery.pk),
        },
        f"{api}/webhooks/{{id}}/rotate-secret": {"id": str(endpoint.pk)},
        f"{api}/webhooks/{{id}}/test": {"id": str(endpoint.pk)},
        f"{api}/workflows/{{id}}": {"id": str(scratch_workflow.pk)},
        f"{api}/workflows/{{id}}/execute": {"id": str(workflow.pk)},
        f"{api}/workflows/{{id}}/versions": {"id": str(workflow.pk)},
        f"{api}/workflows/{{id}}/versions/{{version}}": {"id": str(workflow.pk), "version": 1},
        # Bodies of the token endpoints: the owner's password (tests/factories.py) and a refresh token.
        f"{api}/auth/token": {"username": owner.username, "password": "pw-123456-long"},
        f"{api}/auth/token/refresh": {"refresh": str(RefreshToken.for_user(owner))},
        # Bodies naming a workflow (schedules, webhooks).
        "workflow_id": {"workflow_id": str(workflow.pk)},
        # Reads of a resource whose path it shares with its PUT, PATCH and DELETE: the kept objects.
        f"GET {api}/agents/{{id}}": {"id": str(agent.pk)},
        f"GET {api}/schedules/{{id}}": {"id": str(schedule.pk)},
        f"GET {api}/webhooks/{{id}}": {"id": str(endpoint.pk)},
        f"GET {api}/workflows/{{id}}": {"id": str(workflow.pk)},
    }
