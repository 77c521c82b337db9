"""The admin's Execute form of a workflow: one field per input_schema property (type, required, enum,
default, description) and a raw JSON input; checked by the API's own validation, its errors shown on
the fields they name; operators and above only; inactive workflows and agents refused with the reason."""

import re
from html import unescape

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from agents.models import Agent
from audit.models import AuditEvent
from core.roles import Role
from runs.models import Run
from tests.conftest import make_user
from tests.runs.helpers import workflow_with_agents
from tests.support.admin_forms import form_data
from workflows.services import workflow_delete, workflow_update

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "required": ["text", "count"],
    "properties": {
        "text": {"type": "string", "minLength": 3, "description": "What the agents work on."},
        "count": {"type": "integer", "minimum": 1, "default": 2, "title": "How many"},
        "mode": {"enum": ["fast", "careful"], "default": "careful"},
        "flag": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "ratio": {"type": "number"},
        "odd name": {"type": "string"},
    },
}


@pytest.fixture
def workflow():
    return workflow_with_agents("a", input_schema=SCHEMA)


def url(workflow) -> str:
    return f"/admin/runs/run/execute/{workflow.pk}/"


def page(staff, workflow) -> str:
    response = staff.get(url(workflow))
    assert response.status_code == 200
    return response.content.decode()


def submit(client, workflow, **values):
    """The form as shown, with `values` typed into it (field names as the form has them)."""
    data = form_data(client.get(url(workflow)).content.decode(), "execute-form")
    data.update({name: [value] for name, value in values.items()})
    return client.post(url(workflow), {name: value for name, value in data.items()})


def field_errors(response) -> dict[str, list[str]]:
    """{field name: [its error texts]} as the page shows them, and "" for the errors above the fields."""
    html = response.content.decode()
    found = {
        name: [unescape(text) for text in re.findall(r"<li>(.*?)</li>", items)]
        for name, items in re.findall(r'<ul class="wf-execute-field-errors" id="errors-([^"]+)">(.*?)</ul>', html)
    }
    top = re.search(r'id="execute-errors" role="alert"><ul>(.*?)</ul>', html)
    if top:
        found[""] = [unescape(text) for text in re.findall(r"<li>(.*?)</li>", top.group(1))]
    return found


def test_the_form_has_a_field_per_property_with_its_type_default_and_description(staff, workflow):
    html = page(staff, workflow)
    assert 'name="p_text"' in html and 'name="p_count"' in html and 'name="p1"' not in html
    assert re.search(r'name="p6"', html)  # "odd name" is no identifier: numbered
    assert "What the agents work on." in html and "How many" in html
    assert re.search(r'<input[^>]*name="p_count"[^>]*value="2"', html)  # the default
    mode = html[html.index('name="p_mode"') : html.index("</select>", html.index('name="p_mode"'))]
    assert '<option value="&quot;careful&quot;" selected>careful</option>' in mode
    assert '<option value="true">true</option>' in html[html.index('name="p_flag"') :]
    assert re.search(r'<textarea[^>]*name="p_tags"', html) and "JSON (array)." in html
    assert re.search(r'<textarea[^>]*name="input_json"', html)  # the raw JSON fallback
    label = html[html.index('for="id_p_text"') : html.index("</label>", html.index('for="id_p_text"'))]
    assert "*" in label  # required, as the schema says
    assert "The input_schema" in html and "&quot;minLength&quot;: 3" in html


def test_a_valid_form_starts_a_run_with_typed_input_and_lands_on_its_page(staff, workflow):
    response = submit(
        staff, workflow, p_text="tides", p_count="3", p_flag="true", p_tags='["a", "b"]', p_ratio="0.5", p6="x"
    )
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/runs/run/{run.pk}/change/"
    expected = {"text": "tides", "count": 3, "mode": "careful", "flag": True, "tags": ["a", "b"], "ratio": 0.5}
    assert run.input_data == expected | {"odd name": "x"}
    assert (run.triggered_by, run.workflow_version) == ("boss", workflow.version)
    assert AuditEvent.objects.get(action="run.execute").user == "boss"
    followed = staff.get(response["Location"]).content.decode()
    assert f"Run {run.pk} started from {workflow.name} v{workflow.version}." in followed


def test_each_schema_error_is_shown_on_its_field_with_the_apis_message(staff, operator, workflow):
    response = submit(staff, workflow, p_text="ab", p_count="abc", p_tags='["a", 3]', p_ratio="")
    assert response.status_code == 200 and not Run.objects.exists()
    errors = field_errors(response)
    assert errors["p_text"] == ["'ab' is too short"]
    assert errors["p_count"] == ["'abc' is not of type 'integer'"]
    assert errors["p_tags"] == ["1: 3 is not of type 'string'"]
    assert set(errors) == {"p_text", "p_count", "p_tags"}
    # The same input through the API: the same messages, at input_data.<the field's path>.
    body = {"input_data": {"text": "ab", "count": "abc", "mode": "careful", "tags": ["a", 3]}}
    api = operator.post(f"/api/v1/workflows/{workflow.pk}/execute", body, format="json").json()["errors"]
    assert {(e["field"], e["message"]) for e in api} == {
        ("input_data.text", "'ab' is too short"),
        ("input_data.count", "'abc' is not of type 'integer'"),
        ("input_data.tags.1", "3 is not of type 'string'"),
    }
    # What was typed stays in the form, to be fixed.
    html = response.content.decode()
    assert re.search(r'name="p_text"[^>]*value="ab"', html) or re.search(r'value="ab"[^>]*name="p_text"', html)


def test_a_missing_required_property_and_bad_json_are_shown_on_their_fields(staff, workflow):
    errors = field_errors(submit(staff, workflow, p_text="", p_count="0", p_tags="[1,"))
    assert errors == {"p_tags": ["Not valid JSON: Expecting value (line 1, column 4)."]}  # nothing sent yet
    errors = field_errors(submit(staff, workflow, p_text="", p_count="0"))
    assert errors == {"p_text": ["'text' is a required property"], "p_count": ["0 is less than the minimum of 1"]}
    assert not Run.objects.exists()


def test_the_raw_json_input_replaces_the_fields_and_its_errors_name_their_paths(staff, workflow):
    errors = field_errors(submit(staff, workflow, p_text="ignored", input_json='{"text": 5, "count": 1}'))
    assert errors == {"input_json": ["input_data.text: 5 is not of type 'string'"]}
    assert field_errors(submit(staff, workflow, input_json="[1]")) == {
        "input_json": ["The input must be a JSON object."]
    }
    assert "Not valid JSON" in field_errors(submit(staff, workflow, input_json="{"))["input_json"][0]
    response = submit(staff, workflow, p_text="ignored", input_json='{"text": "whole", "count": 1}')
    assert response.status_code == 302 and Run.objects.get().input_data == {"text": "whole", "count": 1}


def test_without_an_input_schema_the_input_is_json(staff):
    workflow = workflow_with_agents("a")
    html = page(staff, workflow)
    assert "this workflow has no input_schema" in html and 'name="p_' not in html
    response = submit(staff, workflow, input_json='{"anything": [1, 2]}')
    assert response.status_code == 302 and Run.objects.get().input_data == {"anything": [1, 2]}


def test_a_double_submit_starts_one_run(staff, workflow):
    data = form_data(staff.get(url(workflow)).content.decode(), "execute-form")
    data.update(p_text=["tides"], p_count=["1"])
    first, second = staff.post(url(workflow), data), staff.post(url(workflow), data)
    assert first["Location"] == second["Location"] and Run.objects.count() == 1
    assert "had already started run" in staff.get(second["Location"]).content.decode()
    data.update(p_text=["other"])
    third = staff.post(url(workflow), data)  # the same form key with other input: a fresh key to send again
    assert third.status_code == 200 and "send it again" in third.content.decode()
    again = form_data(third.content.decode(), "execute-form")
    assert again["request_key"] != data["request_key"] and staff.post(url(workflow), again).status_code == 302
    assert Run.objects.count() == 2


@pytest.mark.parametrize("role", [Role.VIEWER, None])
def test_below_operator_the_form_is_refused_and_the_button_hidden(workflow, role):
    user = make_user("looker", role)
    user.is_staff = True
    user.set_password("pw-123456-long")
    user.save()
    client = Client()
    assert client.login(username="looker", password="pw-123456-long")
    assert client.get(url(workflow)).status_code == 403
    assert client.post(url(workflow), {"p_text": "tides", "p_count": "1"}).status_code == 403
    assert not Run.objects.exists()
    user.user_permissions.add(Permission.objects.get(codename="view_workflow"))
    workflow_page = client.get(f"/admin/workflows/workflow/{workflow.pk}/change/")
    assert workflow_page.status_code == 200 and "Step graph" in workflow_page.content.decode()
    assert f"/admin/workflows/workflow/{workflow.pk}/execute/" not in workflow_page.content.decode()
    assert client.get(f"/admin/workflows/workflow/{workflow.pk}/execute/").status_code == 403


def test_the_workflow_page_has_an_execute_button_for_operators(staff, workflow):
    html = staff.get(f"/admin/workflows/workflow/{workflow.pk}/change/").content.decode()
    button = f"/admin/workflows/workflow/{workflow.pk}/execute/"
    assert f'href="{button}"' in html
    assert staff.get(button)["Location"] == url(workflow)


def test_an_inactive_workflow_or_agent_is_refused_with_the_reason(staff, workflow):
    workflow_update(workflow=workflow, user=None, definition=workflow.definition, status="inactive")
    html = page(staff, workflow)
    assert "is inactive; activate it to run it." in html and re.search(r'id="execute-submit"[^>]*disabled', html)
    response = submit(staff, workflow, p_text="tides", p_count="1")
    assert response.status_code == 200 and "is inactive" in response.content.decode() and not Run.objects.exists()
    workflow_update(workflow=workflow, user=None, definition=workflow.definition, status="active")
    Agent.objects.filter(name="a").update(status="inactive")
    html = page(staff, workflow)
    assert "agent &#x27;a&#x27; is inactive (step s1)" in html
    assert "agent 'a' is inactive" in unescape(submit(staff, workflow, p_text="tides", p_count="1").content.decode())
    assert not Run.objects.exists()


def test_a_deleted_workflow_is_refused_and_an_unknown_one_not_found(staff, workflow):
    workflow_delete(workflow=workflow, user=None)
    response = staff.get(url(workflow), follow=True)
    assert response.redirect_chain == [(f"/admin/workflows/workflow/{workflow.pk}/change/", 302)]
    assert "is deleted; it cannot run." in unescape(response.content.decode())
    assert staff.post(url(workflow), {"p_text": "tides", "p_count": "1"}).status_code == 302
    assert not Run.objects.exists()
    assert staff.get("/admin/runs/run/execute/00000000-0000-0000-0000-000000000000/").status_code == 404
