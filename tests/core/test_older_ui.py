"""The older system's web UI (litecone-studio `workflow-ui/`) against this API, through a gateway that
adds the API key: each request body below is built the way `workflow-ui/src/services/api/*.ts` and the
forms that call them build it (axios, JSON), and each check reads the fields its `types/*.ts` declare
and its pages use. If one of these fails, that screen of the older UI breaks."""

import pytest

from agents.models import Agent
from runs.models import Run, StepExecution
from tests.factories import AgentFactory
from tests.support.http_server import StubServer

pytestmark = pytest.mark.django_db
API = "/api/v1"

PAGE = {"items", "total", "page", "page_size", "total_pages"}  # PaginatedResponse<T>
AGENT = {"id", "name", "url", "description", "auth_type", "auth_config", "timeout_ms", "retry_config"}
AGENT |= {"circuit_breaker_config", "status", "created_at", "updated_at", "created_by", "updated_by"}
WORKFLOW = {"id", "name", "description", "version", "workflow_data", "status", "created_at", "updated_at"}
WORKFLOW |= {"created_by", "updated_by"}
RUN = {"id", "run_id", "workflow_id", "workflow_name", "status", "input_data", "triggered_by", "created_at"}
RUN |= {"updated_at", "completed_at", "cancelled_at", "cancelled_by", "error_message"}
STEP = {"id", "run_id", "step_id", "agent_name", "status", "input_data", "output_data", "started_at"}
STEP |= {"completed_at", "error_message"}
BREAKER = {
    "enabled": True,
    "failure_threshold": 5,
    "failure_rate_threshold": 0.5,
    "timeout_seconds": 60,
    "half_open_max_calls": 3,
    "window_size_seconds": 120,
}
RETRY = {"max_retries": 3, "initial_delay_ms": 1000, "max_delay_ms": 30000, "backoff_multiplier": 2.0}


def agent_form(auth_type="none", *, token="", name=None, description=""):
    """AgentForm.handleSubmit: `baseData`, plus `name` when creating. Empty strings become undefined,
    which JSON.stringify leaves out; auth_config is null for auth_type none."""
    data = {
        "url": "http://127.0.0.1:9100/",
        "auth_type": auth_type,
        "auth_config": {"token": token} if auth_type == "bearer" else None,
        "timeout_ms": 30000,
        "retry_config": RETRY,
        "circuit_breaker_config": BREAKER,
    }
    if description:
        data["description"] = description
    if name is not None:
        data["name"] = name
    return data


@pytest.fixture
def ui(client_for):
    """The gateway's key: the UI creates, edits and runs, so an editor."""
    return client_for("editor")


def test_agent_create_edit_list_and_delete(ui):
    created = ui.post(f"{API}/agents", agent_form(name="summarizer", description="Sums up."), format="json")
    assert created.status_code == 201, created.content
    agent = created.json()
    assert AGENT <= set(agent)
    assert agent["auth_config"] == {} and agent["retry_config"] == RETRY
    assert agent["circuit_breaker_config"] == BREAKER
    assert created["Location"] == f"{API}/agents/{agent['id']}"

    bearer = ui.post(f"{API}/agents", agent_form("bearer", token="s3cret", name="secured"), format="json").json()
    assert bearer["auth_config"] == {"token": "********"}

    # AgentDetail -> AgentForm in edit mode: no name; the token field shows what GET answered (masked).
    edit = agent_form("bearer", token=bearer["auth_config"]["token"], description="Now with more words.")
    edit["timeout_ms"] = 45000
    updated = ui.put(f"{API}/agents/{bearer['id']}", edit, format="json")
    assert updated.status_code == 200, updated.content
    body = updated.json()
    assert (body["name"], body["timeout_ms"], body["description"]) == ("secured", 45000, "Now with more words.")
    assert Agent.objects.get(pk=bearer["id"]).auth_config == {"token": "s3cret"}  # the masked one kept it

    # Back to no auth: auth_config null.
    none = ui.put(f"{API}/agents/{bearer['id']}", agent_form(), format="json")
    assert none.status_code == 200, none.content
    assert none.json()["auth_config"] == {} and none.json()["auth_type"] == "none"

    listed = ui.get(f"{API}/agents").json()
    assert PAGE <= set(listed) and {item["name"] for item in listed["items"]} == {"summarizer", "secured"}
    assert all(AGENT <= set(item) for item in listed["items"])
    assert ui.get(f"{API}/agents", {"page": 1, "page_size": 20, "status": "active"}).json()["total"] == 2

    assert ui.delete(f"{API}/agents/{agent['id']}").status_code == 204


def test_agent_health_panel(ui):
    card = {"name": "Echo", "description": "Echoes.", "version": "1.0.0", "capabilities": {"streaming": False}}
    with StubServer({"/.well-known/agent-card.json": (200, card, 0)}) as server:
        agent = AgentFactory(url=server.url + "/")
        health = ui.get(f"{API}/agents/{agent.id}/health").json()
    # AgentHealthResponse
    assert health["status"] == "healthy" and health["message"] == "Echoes."
    assert health["timestamp"] and isinstance(health["response_time_ms"], int)
    assert health["agent_card"]["name"] == "Echo" and health["agent_card"]["version"] == "1.0.0"


def definition_steps():
    """Steps as the UI's JSON editor holds them (no `type`: agent is the default)."""
    return {
        "research": {
            "id": "research",
            "agent_name": "Researcher",
            "next_step": "write",
            "input_mapping": {"topic": "${workflow.input.topic}"},
        },
        "write": {
            "id": "write",
            "agent_name": "Writer",
            "next_step": None,
            "input_mapping": {"notes": "${research.output.notes}"},
        },
    }


def test_workflow_create_list_edit_versions_and_execute(ui):
    AgentFactory(name="Researcher")
    AgentFactory(name="Writer")
    # WorkflowCreate.handleSubmit
    payload = {"name": "research", "description": "Look it up.", "start_step": "research", "steps": definition_steps()}
    created = ui.post(f"{API}/workflows", payload, format="json")
    assert created.status_code == 201, created.content
    workflow = created.json()
    assert WORKFLOW <= set(workflow) and workflow["version"] == 1
    assert workflow["workflow_data"]["start_step"] == "research"
    assert created["Location"] == f"{API}/workflows/{workflow['id']}"

    # WorkflowsList: useWorkflows() and its cards read workflow_data
    listed = ui.get(f"{API}/workflows").json()
    assert PAGE <= set(listed)
    [item] = listed["items"]
    assert WORKFLOW <= set(item) and item["workflow_data"]["steps"].keys() == {"research", "write"}
    sorted_list = ui.get(f"{API}/workflows", {"sort_by": "name", "sort_order": "asc", "status": "active"}).json()
    assert [w["name"] for w in sorted_list["items"]] == ["research"]

    # WorkflowEdit: the editor starts from workflow_data; the payload has no name; description omitted
    # when cleared (undefined).
    loaded = ui.get(f"{API}/workflows/{workflow['id']}").json()
    steps = loaded["workflow_data"]["steps"]
    steps["write"]["input_mapping"]["tone"] = "formal"
    edit = {"start_step": loaded["workflow_data"]["start_step"], "steps": steps}
    updated = ui.put(f"{API}/workflows/{workflow['id']}", edit, format="json")
    assert updated.status_code == 200, updated.content
    assert updated.json()["version"] == 2 and updated.json()["name"] == "research"
    assert updated.json()["description"] == "Look it up."

    # WorkflowDetail / ExecuteWorkflowDialog: versions, page 1 of 100; pick one, execute `selected.id`
    versions = ui.get(f"{API}/workflows/{workflow['id']}/versions", {"page": 1, "page_size": 100}).json()
    assert PAGE <= set(versions) and [v["version"] for v in versions["items"]] == [2, 1]
    assert all(WORKFLOW <= set(v) for v in versions["items"])
    selected = next(v for v in versions["items"] if v["version"] == 2)
    assert selected["workflow_data"]["steps"]["write"]["input_mapping"]["tone"] == "formal"
    executed = ui.post(f"{API}/workflows/{selected['id']}/execute", {"input_data": {"topic": "x"}}, format="json")
    assert executed.status_code == 202, executed.content
    result = executed.json()  # WorkflowExecuteResponse
    assert {"message", "run_id", "workflow_id", "status", "timestamp"} <= set(result)
    assert result["workflow_id"] == workflow["id"] and result["status"] == "PENDING"
    assert ui.get(f"{API}/runs/{result['run_id']}").status_code == 200  # navigate(`/runs/${run_id}`)

    assert ui.delete(f"{API}/workflows/{workflow['id']}").status_code == 204


@pytest.fixture
def run(ui):
    AgentFactory(name="Researcher")
    AgentFactory(name="Writer")
    payload = {"name": "research", "start_step": "research", "steps": definition_steps()}
    workflow = ui.post(f"{API}/workflows", payload, format="json").json()
    body = ui.post(f"{API}/workflows/{workflow['id']}/execute", {"input_data": {"topic": "x"}}, format="json").json()
    return Run.objects.get(pk=body["run_id"])


def test_runs_list_detail_and_steps(ui, run):
    StepExecution.objects.create(run=run, step_id="research", agent_name="Researcher", input_data={"topic": "x"})
    # RunsList: status, workflow_id, sort_by, sort_order ("Recently Updated" is updated_at desc)
    params = {"status": "PENDING", "workflow_id": str(run.workflow_id), "sort_by": "updated_at", "sort_order": "desc"}
    listed = ui.get(f"{API}/runs", params).json()
    assert PAGE <= set(listed) and [r["id"] for r in listed["items"]] == [str(run.id)]
    assert all(RUN <= set(item) for item in listed["items"])
    assert ui.get(f"{API}/runs", {"workflow_definition_id": str(run.workflow_id)}).json()["total"] == 1
    assert ui.get(f"{API}/runs", {"page_size": 100}).json()["total"] == 1  # useRetryAttempts
    for sort_by in ("created_at", "updated_at", "completed_at", "status"):
        assert ui.get(f"{API}/runs", {"sort_by": sort_by, "sort_order": "asc"}).status_code == 200

    detail = ui.get(f"{API}/runs/{run.id}").json()
    assert RUN <= set(detail) and detail["run_id"] == str(run.id)

    steps = ui.get(f"{API}/runs/{run.id}/steps").json()  # getRunSteps: {items, total}
    assert steps["total"] == 1 and STEP <= set(steps["items"][0])


def test_cancel_then_retry(ui, run):
    # RunDetail.handleCancel
    cancelled = ui.post(f"{API}/runs/{run.id}/cancel", {"reason": "Cancelled by user"}, format="json")
    assert cancelled.status_code == 200, cancelled.content
    body = cancelled.json()  # WorkflowCancelResponse
    assert {"message", "run_id", "status", "timestamp"} <= set(body)
    assert body["status"] == "CANCELLED" and body["run_id"] == str(run.id)
    assert body["cancel_reason"] == "Cancelled by user"

    # RunDetail.handleRetry: retryRun(id) posts `data || {}`, then navigates to new_run_id
    retried = ui.post(f"{API}/runs/{run.id}/retry", {}, format="json")
    assert retried.status_code == 202, retried.content
    body = retried.json()  # WorkflowRetryResponse
    assert {"message", "new_run_id", "original_run_id", "timestamp"} <= set(body)
    assert ui.get(f"{API}/runs/{body['new_run_id']}").json()["status"] == "PENDING"
    assert body["original_run_id"] == str(run.id)


def test_errors_have_the_shape_the_ui_reads(ui, client_for):
    # ApiError: error, detail, errors[{field, message, type}], status_code, timestamp, path, request_id
    response = ui.post(f"{API}/workflows", {"name": "x", "start_step": "a", "steps": {}}, format="json")
    assert response.status_code == 422
    body = response.json()
    assert {"error", "detail", "errors", "status_code", "timestamp", "path", "request_id"} <= set(body)
    assert all({"field", "message", "type"} <= set(error) for error in body["errors"])
    refused = client_for("viewer", username="reader").post(f"{API}/agents", agent_form(name="a"), format="json")
    assert refused.status_code == 403 and refused.json()["detail"].startswith("This action needs the editor role")
