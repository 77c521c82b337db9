"""What the older API's clients rely on: PUT without a name, list items with workflow_data (and
`?fields=` to trim them), versions as whole workflows that can be opened and executed."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import Run
from tests.factories import AgentFactory
from tests.workflows.test_workflows_api import URL, definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def agents(db):
    return [AgentFactory(name="Researcher"), AgentFactory(name="Writer")]


@pytest.fixture
def workflow(editor, agents):
    created = editor.post(URL, definition(), format="json")
    assert created.status_code == 201, created.content
    return created.json()


def test_put_without_name_keeps_the_name_and_the_rest(editor, workflow):
    steps = workflow["workflow_data"]["steps"]
    steps["step-2"]["input_mapping"]["tone"] = "casual"
    response = editor.put(f"{URL}/{workflow['id']}", {"start_step": "step-1", "steps": steps}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "research-and-write" and body["description"] == "Research, then write."
    assert body["input_schema"] == workflow["input_schema"]  # left out, so kept
    assert body["version"] == 2 and body["steps"]["step-2"]["input_mapping"]["tone"] == "casual"


def test_put_with_only_a_description_or_a_status(editor, workflow):
    response = editor.put(f"{URL}/{workflow['id']}", {"description": "New words."}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["description"], response.json()["version"]) == ("New words.", 2)
    response = editor.put(f"{URL}/{workflow['id']}", {"status": "inactive"}, format="json")
    assert (response.json()["status"], response.json()["version"]) == ("inactive", 2)


def test_put_still_validates_the_merged_definition(editor, workflow):
    response = editor.put(f"{URL}/{workflow['id']}", {"start_step": "missing"}, format="json")
    assert response.status_code == 422
    assert "start_step" in {error["field"] for error in response.json()["errors"]}


def test_list_items_carry_workflow_data(viewer, workflow):
    [item] = viewer.get(URL).json()["items"]
    assert item["workflow_data"] == workflow["workflow_data"]
    assert item["workflow_data"]["steps"]["step-1"]["agent_name"] == "Researcher"
    assert item["step_count"] == 2 and "steps" not in item


def test_fields_trims_list_items(viewer, workflow):
    body = viewer.get(URL, {"fields": "id,name,version"}).json()
    assert body["items"] == [{"id": workflow["id"], "name": "research-and-write", "version": 1}]
    assert body["total"] == 1
    both = viewer.get(f"{URL}?fields=id&fields=workflow_data").json()["items"]
    assert both == [{"id": workflow["id"], "workflow_data": workflow["workflow_data"]}]


def test_fields_without_the_definition_does_not_load_it(viewer, workflow):
    with CaptureQueriesContext(connection) as queries:
        assert viewer.get(URL, {"fields": "id,name"}).status_code == 200
    listing = [q["sql"] for q in queries.captured_queries if 'FROM "workflows_workflow"' in q["sql"]]
    assert listing and all('"definition"' not in sql for sql in listing)


@pytest.mark.parametrize("value", ["id,nope", "", ",", "steps"])
def test_unknown_or_empty_fields_is_422(viewer, workflow, value):
    response = viewer.get(URL, {"fields": value})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "fields" and "Allowed" in error["message"]


def test_versions_are_whole_workflows(editor, workflow):
    editor.put(f"{URL}/{workflow['id']}", {"description": "Second."}, format="json")
    items = editor.get(f"{URL}/{workflow['id']}/versions").json()["items"]
    assert [item["version"] for item in items] == [2, 1]
    first = items[1]
    assert first["id"] == first["workflow_id"] == workflow["id"]
    assert (first["name"], first["description"], first["status"]) == (
        "research-and-write",
        "Research, then write.",
        "active",
    )
    assert first["workflow_data"]["version"] == 1 and first["workflow_data"]["workflow_id"] == workflow["id"]
    assert first["workflow_data"]["steps"] == workflow["steps"] == first["steps"]
    assert first["start_step"] == "step-1" and first["input_schema"] == workflow["input_schema"]
    assert first["created_at"][:19] == workflow["created_at"][:19] and first["created_by"] == "editor-user"
    assert first["updated_at"] == first["created_at"] < items[0]["created_at"]
    assert first["definition"]["description"] == "Research, then write."
    assert items[0]["description"] == "Second."
    one = editor.get(f"{URL}/{workflow['id']}/versions/1").json()
    assert one == first


def test_a_version_from_the_list_can_be_executed(operator, editor, workflow):
    # The older UI picks a version from this list and POSTs to /workflows/{item.id}/execute.
    [item] = operator.get(f"{URL}/{workflow['id']}/versions", {"page": 1, "page_size": 100}).json()["items"]
    response = operator.post(f"{URL}/{item['id']}/execute", {"input_data": {"topic": "tides"}}, format="json")
    assert response.status_code == 202, response.content
    run = Run.objects.get(pk=response.json()["run_id"])
    assert (str(run.workflow_id), run.workflow_version) == (item["id"], item["version"])


def test_fields_trims_version_items_too(viewer, workflow):
    items = viewer.get(f"{URL}/{workflow['id']}/versions", {"fields": "version,created_by"}).json()["items"]
    assert items == [{"version": 1, "created_by": "editor-user"}]
    assert viewer.get(f"{URL}/{workflow['id']}/versions", {"fields": "bogus"}).status_code == 422
