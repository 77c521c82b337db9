"""Runs as the older API's clients read them (updated_at, sorting by it, workflow_definition_id), the
cancel reason kept on the run, and execute refusing a plan whose agents cannot be called."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from core.models import OutboxMessage
from runs.models import Run
from runs.services import run_execute
from tests.factories import AgentFactory
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_admin import login
from workflows.services import workflow_create

pytestmark = pytest.mark.django_db
RUNS = "/api/v1/runs"


def test_runs_have_updated_at_and_sort_by_it(viewer):
    workflow = workflow_with_agents("a")
    first, second = (run_execute(workflow=workflow, input_data={"text": "x"}, user=None) for _ in range(2))
    Run.objects.filter(pk=first.pk).update(updated_at=timezone.now() + timedelta(minutes=5))
    body = viewer.get(f"{RUNS}/{first.id}").json()
    assert body["updated_at"] > body["created_at"]
    for params in ({"sort_by": "updated_at", "sort_order": "desc"}, {"ordering": "-updated_at"}):
        assert [item["id"] for item in viewer.get(RUNS, params).json()["items"]] == [str(first.id), str(second.id)]
    ascending = viewer.get(RUNS, {"sort_by": "updated_at"}).json()["items"]
    assert [item["id"] for item in ascending] == [str(second.id), str(first.id)]


def test_workflow_definition_id_is_workflow_id(viewer):
    mine, other = workflow_with_agents("a", name="mine"), workflow_with_agents("b", name="other")
    run = run_execute(workflow=mine, input_data={"text": "x"}, user=None)
    run_execute(workflow=other, input_data={"text": "x"}, user=None)
    items = viewer.get(RUNS, {"workflow_definition_id": str(mine.id)}).json()["items"]
    assert [item["id"] for item in items] == [str(run.id)]
    assert viewer.get(RUNS, {"workflow_definition_id": "nope"}).status_code == 422


def test_cancel_reason_is_kept_shown_and_cleared_on_retry(operator):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    assert operator.get(f"{RUNS}/{run.id}").json()["cancel_reason"] is None
    body = operator.post(f"{RUNS}/{run.id}/cancel", {"reason": "Cancelled by user"}, format="json").json()
    assert body["status"] == "CANCELLED" and body["cancel_reason"] == "Cancelled by user"
    assert operator.get(f"{RUNS}/{run.id}").json()["cancel_reason"] == "Cancelled by user"
    run.refresh_from_db()
    assert run.cancel_reason == "Cancelled by user"

    staff = login("boss", superuser=True)
    assert "Cancelled by user" in staff.get(f"/admin/runs/run/{run.id}/change/").content.decode()

    retried = operator.post(f"{RUNS}/{run.id}/retry").json()
    assert retried["cancel_reason"] is None and retried["cancelled_by"] is None
    run.refresh_from_db()
    assert run.cancel_reason is None


def test_cancel_without_a_reason_leaves_it_null(operator):
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    assert operator.post(f"{RUNS}/{run.id}/cancel").json()["cancel_reason"] is None


def execute(client, workflow):
    return client.post(f"/api/v1/workflows/{workflow.id}/execute", {"input_data": {"text": "x"}}, format="json")


def test_execute_is_refused_when_an_agent_is_deleted_or_inactive(operator):
    workflow = workflow_with_agents("ok", "sleepy", "gone")
    Agent.objects.filter(name="sleepy").update(status="inactive")
    Agent.objects.filter(name="gone").update(status="deleted", deleted_at=timezone.now())
    response = execute(operator, workflow)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "agent 'gone' does not exist" not in detail  # it exists, deleted
    assert "agent 'gone' is deleted (step s3)" in detail and "agent 'sleepy' is inactive (step s2)" in detail
    assert "'ok'" not in detail
    assert not Run.objects.exists() and not OutboxMessage.objects.exists()


def test_an_agent_that_never_existed_is_named_too(operator):
    # Saving checks agents too; a definition stored before that (or by hand) is still refused at execute.
    workflow = workflow_with_agents("a")
    definition = {**workflow.definition, "steps": {"s1": {**workflow.definition["steps"]["s1"], "agent_name": "x"}}}
    type(workflow).objects.filter(pk=workflow.pk).update(definition=definition)
    response = execute(operator, workflow)
    assert response.status_code == 409 and "agent 'x' does not exist (step s1)" in response.json()["detail"]


def nested_definition() -> dict:
    """Agents only inside blocks: parallel, conditional branch, loop body, fork-join branch."""

    def agent(step_id, name, next_step=None):
        return {
            "id": step_id,
            "agent_name": name,
            "input_mapping": {"t": "${workflow.input.text}"},
            "next_step": next_step,
        }

    return {
        "name": "nested",
        "start_step": "par",
        "steps": {
            "par": {"id": "par", "type": "parallel", "parallel_steps": ["p1", "p2"], "next_step": "cond"},
            "p1": agent("p1", "in-parallel"),
            "p2": agent("p2", "fine"),
            "cond": {
                "id": "cond",
                "type": "conditional",
                "condition": {"expression": "${workflow.input.text} == 'x'"},
                "if_true_step": "c1",
                "if_false_step": None,
                "next_step": "loop",
            },
            "c1": agent("c1", "in-branch"),
            "loop": {
                "id": "loop",
                "type": "loop",
                "loop_config": {"collection": "${workflow.input.items}", "loop_body": ["l1"]},
                "next_step": "fork",
            },
            "l1": agent("l1", "in-loop"),
            "fork": {
                "id": "fork",
                "type": "fork_join",
                "fork_join_config": {"branches": {"left": {"steps": ["f1"]}, "right": {"steps": ["f2"]}}},
                "next_step": None,
            },
            "f1": agent("f1", "in-fork"),
            "f2": agent("f2", "fine"),
        },
    }


def test_agents_nested_in_blocks_are_found(operator):
    names = ["in-parallel", "fine", "in-branch", "in-loop", "in-fork"]
    for name in names:
        AgentFactory(name=name)
    workflow = workflow_create(user=None, definition=nested_definition())
    Agent.objects.exclude(name="fine").update(status="inactive")
    response = execute(operator, workflow)
    assert response.status_code == 409
    detail = response.json()["detail"]
    for name, step in [("in-parallel", "p1"), ("in-branch", "c1"), ("in-loop", "l1"), ("in-fork", "f1")]:
        assert f"agent '{name}' is inactive (step {step})" in detail
    assert "'fine'" not in detail

    Agent.objects.update(status="active")
    assert execute(operator, workflow).status_code == 202


def test_an_agent_used_twice_is_named_once_with_both_steps(operator):
    workflow = workflow_with_agents("twice", "twice")
    Agent.objects.filter(name="twice").update(status="inactive")
    detail = execute(operator, workflow).json()["detail"]
    assert detail.count("'twice'") == 1 and "(steps s1, s2)" in detail
