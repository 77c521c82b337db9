import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.factories import AgentFactory
from workflows.models import Workflow, WorkflowVersion

URL = "/api/v1/workflows"


def definition(name="research-and-write", **overrides):
    body = {
        "name": name,
        "description": "Research, then write.",
        "start_step": "step-1",
        "input_schema": {"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}},
        "steps": {
            "step-1": {
                "id": "step-1",
                "type": "agent",
                "agent_name": "Researcher",
                "input_mapping": {"topic": "${workflow.input.topic}"},
                "next_step": "step-2",
            },
            "step-2": {
                "id": "step-2",
                "agent_name": "Writer",
                "input_mapping": {"research": "${step-1.output.findings}", "tone": "formal"},
                "next_step": None,
            },
        },
    }
    body.update(overrides)
    return body


@pytest.fixture
def agents(db):
    return [AgentFactory(name="Researcher"), AgentFactory(name="Writer")]


def fields(response):
    return {e["field"] for e in response.json()["errors"]}


@pytest.mark.django_db
def test_create_returns_the_whole_definition_as_version_1(editor, agents):
    response = editor.post(URL, definition(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 1 and body["status"] == "active"
    assert set(body["steps"]) == {"step-1", "step-2"}
    assert body["steps"]["step-2"]["type"] == "agent"  # normalised: the default type is written out
    assert body["workflow_data"]["start_step"] == "step-1"
    assert body["created_by"] == editor.user.username
    assert WorkflowVersion.objects.get(workflow_id=body["id"]).version == 1
    [event] = AuditEvent.objects.filter(action="workflow.create")
    assert event.resource_id == body["id"] and event.changes["version"] == [None, 1]
    detail = editor.get(f"{URL}/{body['id']}").json()
    assert detail == body


@pytest.mark.django_db
def test_older_files_workflow_id_and_version_are_ignored(editor, agents):
    response = editor.post(URL, definition(workflow_id="wf-legacy", version="7"), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 1


@pytest.mark.django_db
def test_invalid_definition_reports_every_problem(editor, agents):
    bad = definition(start_step="nope")
    bad["steps"]["step-2"]["next_step"] = "ghost"
    bad["steps"]["step-2"]["agent_name"] = "Nobody"
    bad["steps"]["step-1"]["id"] = "other"
    response = editor.post(URL, bad, format="json")
    assert response.status_code == 422
    assert {"start_step", "steps.step-2.next_step", "steps.step-2.agent_name", "steps.step-1.id"} <= fields(response)
    assert not Workflow.objects.exists()


@pytest.mark.django_db
def test_deleted_agent_is_refused(editor, agents):
    agents[1].status = "deleted"
    agents[1].save()
    response = editor.post(URL, definition(), format="json")
    assert response.status_code == 422
    assert "steps.step-2.agent_name" in fields(response)


@pytest.mark.django_db
def test_inactive_agent_may_be_saved(editor, agents):
    agents[1].status = "inactive"
    agents[1].save()
    assert editor.post(URL, definition(), format="json").status_code == 201


@pytest.mark.django_db
def test_bad_input_schema_and_condition_are_refused(editor, agents):
    bad = definition(input_schema={"type": "bogus"})
    bad["steps"]["check"] = {
        "id": "check",
        "type": "conditional",
        "condition": {"expression": "(("},
        "if_true_step": None,
        "if_false_step": None,
        "next_step": None,
    }
    bad["steps"]["step-2"]["next_step"] = "check"
    response = editor.post(URL, bad, format="json")
    assert response.status_code == 422
    found = fields(response)
    assert any(f.startswith("input_schema") for f in found)
    assert "steps.check.condition.expression" in found


@pytest.mark.django_db
def test_duplicate_name_is_409(editor, agents):
    editor.post(URL, definition(), format="json")
    response = editor.post(URL, definition(), format="json")
    assert response.status_code == 409


@pytest.mark.django_db
def test_update_creates_a_version_and_keeps_the_old_one(editor, agents):
    created = editor.post(URL, definition(), format="json").json()
    changed = definition(description="Now better.")
    response = editor.put(f"{URL}/{created['id']}", changed, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    assert response.json()["description"] == "Now better."
    v1 = editor.get(f"{URL}/{created['id']}/versions/1").json()
    assert v1["definition"]["description"] == "Research, then write."
    assert v1["created_by"] == editor.user.username
    versions = editor.get(f"{URL}/{created['id']}/versions").json()
    assert [v["version"] for v in versions["items"]] == [2, 1] and versions["total"] == 2
    [event] = AuditEvent.objects.filter(action="workflow.update")
    assert event.changes["description"] == ["Research, then write.", "Now better."]
    assert event.changes["version"] == [1, 2]


@pytest.mark.django_db
def test_update_that_changes_nothing_creates_no_version(editor, agents):
    created = editor.post(URL, definition(), format="json").json()
    response = editor.put(f"{URL}/{created['id']}", definition(), format="json")
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert WorkflowVersion.objects.count() == 1
    assert not AuditEvent.objects.filter(action="workflow.update").exists()


@pytest.mark.django_db
def test_patch_changes_part_of_the_definition(editor, agents):
    created = editor.post(URL, definition(), format="json").json()
    steps = created["steps"]
    steps["step-2"]["input_mapping"]["tone"] = "casual"
    response = editor.patch(f"{URL}/{created['id']}", {"steps": steps}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == 2 and body["name"] == "research-and-write"
    assert body["steps"]["step-2"]["input_mapping"]["tone"] == "casual"
    event = AuditEvent.objects.get(action="workflow.update")
    assert set(event.changes) == {"steps.step-2", "version"}
    status_only = editor.patch(f"{URL}/{created['id']}", {"status": "inactive"}, format="json").json()
    assert status_only["status"] == "inactive" and status_only["version"] == 2


@pytest.mark.django_db
def test_invalid_update_keeps_the_current_version(editor, agents):
    created = editor.post(URL, definition(), format="json").json()
    response = editor.patch(f"{URL}/{created['id']}", {"start_step": "ghost"}, format="json")
    assert response.status_code == 422
    assert Workflow.objects.get(pk=created["id"]).version == 1


@pytest.mark.django_db
def test_list_filters_sorting_and_soft_delete(editor, agents):
    ids = {}
    for name in ["beta", "alpha", "gamma"]:
        ids[name] = editor.post(URL, definition(name=name), format="json").json()["id"]
    editor.patch(f"{URL}/{ids['gamma']}", {"status": "inactive"}, format="json")
    body = editor.get(URL, {"ordering": "name"}).json()
    assert [w["name"] for w in body["items"]] == ["alpha", "beta", "gamma"]
    assert body["items"][0]["step_count"] == 2 and "steps" not in body["items"][0]
    assert [w["name"] for w in editor.get(URL, {"sort_by": "name", "sort_order": "desc"}).json()["items"]] == [
        "gamma",
        "beta",
        "alpha",
    ]
    assert [w["name"] for w in editor.get(URL, {"ordering": "-updated_at"}).json()["items"]][0] == "gamma"
    assert [w["name"] for w in editor.get(URL, {"ordering": "created_at"}).json()["items"]] == [
        "beta",
        "alpha",
        "gamma",
    ]
    assert [w["name"] for w in editor.get(URL, {"name": "AL"}).json()["items"]] == ["alpha"]
    assert [w["name"] for w in editor.get(URL, {"status": "inactive"}).json()["items"]] == ["gamma"]
    assert editor.delete(f"{URL}/{ids['beta']}").status_code == 204
    assert editor.get(f"{URL}/{ids['beta']}").status_code == 404
    assert editor.get(f"{URL}/{ids['beta']}/versions").status_code == 404
    assert {w["name"] for w in editor.get(URL).json()["items"]} == {"alpha", "gamma"}
    assert [w["name"] for w in editor.get(URL, {"status": "deleted"}).json()["items"]] == ["beta"]
    assert AuditEvent.objects.filter(action="workflow.delete", resource_id=ids["beta"]).exists()
    assert editor.post(URL, definition(name="beta"), format="json").status_code == 201  # the name is free again


@pytest.mark.django_db
def test_unknown_version_is_404(viewer, editor, agents):
    created = editor.post(URL, definition(), format="json").json()
    for version in ("2", "0", "x"):
        response = viewer.get(f"{URL}/{created['id']}/versions/{version}")
        assert response.status_code == 404, version


@pytest.mark.django_db
def test_validate_does_not_save(viewer, agents):
    response = viewer.post(f"{URL}/validate", definition(), format="json")
    assert response.status_code == 200, response.content
    assert response.json()["valid"] is True
    assert response.json()["plan"]["steps"]["step-2"]["type"] == "agent"
    bad = viewer.post(f"{URL}/validate", definition(start_step="ghost"), format="json")
    assert bad.status_code == 422 and "start_step" in fields(bad)
    assert not Workflow.objects.exists()


@pytest.mark.django_db
def test_large_definition_saves(editor, agents):
    steps = {
        f"s{i}": {
            "id": f"s{i}",
            "agent_name": "Writer",
            "input_mapping": {"x": f"${{s{i - 1}.output}}"} if i else {},
            "next_step": f"s{i + 1}" if i < 999 else None,
        }
        for i in range(1000)
    }
    response = editor.post(URL, {"name": "big", "start_step": "s0", "steps": steps}, format="json")
    assert response.status_code == 201, response.content[:500]
    assert editor.get(URL).json()["items"][0]["step_count"] == 1000


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_never_share_a_version(editor, agents):
    created = editor.post(URL, definition(), format="json").json()
    results = []

    def update(n):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=editor.raw_key)
        try:
            response = client.patch(f"{URL}/{created['id']}", {"description": f"edit {n}"}, format="json")
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=update, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(200) == 6, results
    versions = list(WorkflowVersion.objects.filter(workflow_id=created["id"]).values_list("version", flat=True))
    assert sorted(versions) == list(range(1, 8))
    assert Workflow.objects.get(pk=created["id"]).version == 7
