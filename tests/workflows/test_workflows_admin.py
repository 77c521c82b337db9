"""Workflows in the admin: the history's Revert saves the old definition as a new version through
`workflow_update` (validated, audited, versions unique); nothing else of the admin edits a definition."""

import pytest

from agents.models import Agent
from audit.models import AuditEvent
from tests.factories import AgentFactory
from tests.support.admin_forms import form_data
from workflows.models import Workflow, WorkflowVersion
from workflows.services import workflow_create, workflow_delete, workflow_update

pytestmark = pytest.mark.django_db


def definition(description: str, agent: str = "A") -> dict:
    step = {"id": "s", "agent_name": agent, "next_step": None}
    return {"name": "reverted", "description": description, "start_step": "s", "steps": {"s": step}}


def revert(staff, workflow: Workflow, version: int):
    record = workflow.history.filter(version=version).order_by("history_id").first()
    url = f"/admin/workflows/workflow/{workflow.pk}/history/{record.history_id}/"
    page = staff.get(url)
    assert page.status_code == 200
    return staff.post(url, form_data(page.content.decode(), "historicalworkflow_form"), follow=True)


def test_revert_from_the_history_is_a_new_version_through_the_service(staff):
    AgentFactory(name="A")
    workflow = workflow_create(user=None, definition=definition("first"))
    workflow = workflow_update(workflow=workflow, user=None, definition=definition("second"))
    assert workflow.version == 2
    response = revert(staff, workflow, 1)
    assert response.status_code == 200
    workflow.refresh_from_db()
    assert (workflow.version, workflow.description, workflow.updated_by) == (3, "first", "boss")
    versions = list(WorkflowVersion.objects.filter(workflow=workflow).values_list("version", flat=True))
    assert sorted(versions) == [1, 2, 3]
    assert WorkflowVersion.objects.get(workflow=workflow, version=3).definition == workflow.definition
    event = AuditEvent.objects.get(action="workflow.update", user="boss")
    assert event.resource_id == str(workflow.pk)
    assert event.changes["version"] == [2, 3] and event.changes["description"] == ["second", "first"]


def test_revert_to_a_definition_that_no_longer_validates_is_refused_with_the_reason(staff):
    AgentFactory(name="A")
    AgentFactory(name="B")
    workflow = workflow_create(user=None, definition=definition("on A"))
    workflow = workflow_update(workflow=workflow, user=None, definition=definition("on B", agent="B"))
    Agent.objects.filter(name="A").delete()
    response = revert(staff, workflow, 1)
    assert "Unknown agent" in response.content.decode() or "does not exist" in response.content.decode()
    workflow.refresh_from_db()
    assert workflow.version == 2 and not AuditEvent.objects.filter(user="boss").exists()


def test_a_deleted_workflow_cannot_be_reverted(staff):
    AgentFactory(name="A")
    workflow = workflow_create(user=None, definition=definition("first"))
    workflow = workflow_update(workflow=workflow, user=None, definition=definition("second"))
    workflow_delete(workflow=workflow, user=None)
    response = revert(staff, workflow, 1)
    assert "deleted" in response.content.decode()
    workflow.refresh_from_db()
    assert (workflow.version, workflow.status) == (2, "deleted")


def test_saving_the_change_page_writes_nothing(staff):
    AgentFactory(name="A")
    workflow = workflow_create(user=None, definition=definition("first"))
    url = f"/admin/workflows/workflow/{workflow.pk}/change/"
    staff.post(url, form_data(staff.get(url).content.decode(), "workflow_form"))
    assert Workflow.objects.get(pk=workflow.pk).updated_at == workflow.updated_at


def test_the_read_only_change_page_offers_no_save_but_revert_keeps_its_button(staff):
    """Before: the change page showed Save and "Save and continue editing" although nothing on it
    can be edited."""
    AgentFactory(name="A")
    workflow = workflow_create(user=None, definition=definition("first"))
    page = staff.get(f"/admin/workflows/workflow/{workflow.pk}/change/").content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert f"/admin/workflows/workflow/{workflow.pk}/delete/" in page  # deleting (softly) still works
    record = workflow.history.order_by("history_id").first()
    revert_page = staff.get(f"/admin/workflows/workflow/{workflow.pk}/history/{record.history_id}/")
    assert 'name="_save"' in revert_page.content.decode()
