"""API conventions the older system's clients meet: `Location` is the new resource's own URL, a body
that is not JSON is a 415 that says what to send, and a 403 names the role the action needs."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from tests.factories import AgentFactory
from tests.runs.helpers import workflow_with_agents

pytestmark = pytest.mark.django_db
API = "/api/v1"
JSON_HINT = "Send the body as JSON with Content-Type: application/json"


def test_location_of_every_create_is_the_new_resource(admin):
    AgentFactory(name="Writer")
    created = {
        "agents": admin.post(f"{API}/agents", {"name": "a", "url": "http://127.0.0.1:9100/"}, format="json"),
        "workflows": admin.post(
            f"{API}/workflows",
            {
                "name": "w",
                "start_step": "s1",
                "steps": {"s1": {"id": "s1", "agent_name": "Writer", "input_mapping": {}, "next_step": None}},
            },
            format="json",
        ),
        "webhooks": admin.post(
            f"{API}/webhooks", {"url": "http://127.0.0.1:9/hook", "event_types": ["run.*"]}, format="json"
        ),
        "api-keys": admin.post(f"{API}/api-keys", {"name": "ci", "role": "viewer"}, format="json"),
    }
    for resource, response in created.items():
        assert response.status_code == 201, (resource, response.content)
        location = response["Location"]
        assert location == f"{API}/{resource}/{response.json()['id']}", resource
        assert admin.get(location).json()["id"] == response.json()["id"], resource


def test_agent_location_is_not_the_agents_own_url(editor):
    # DRF's default Location is the body's `url` field, which for an agent is the agent's address.
    response = editor.post(f"{API}/agents", {"name": "a", "url": "http://127.0.0.1:9100/"}, format="json")
    assert response["Location"] != "http://127.0.0.1:9100/"


def test_execute_location_is_the_run(operator):
    workflow = workflow_with_agents("a")
    response = operator.post(f"{API}/workflows/{workflow.id}/execute", {"input_data": {"text": "x"}}, format="json")
    assert response.status_code == 202
    assert response["Location"] == f"{API}/runs/{response.json()['id']}"
    assert operator.get(response["Location"]).json()["status"] == "PENDING"


def assert_415(response, media: str):
    assert response.status_code == 415, response.content
    body = response.json()
    assert body["error"] == "unsupported_media_type" and body["status_code"] == 415
    assert JSON_HINT in body["detail"] and media in body["detail"]
    assert body["path"] and body["request_id"] and body["timestamp"]


@pytest.mark.parametrize(
    ("content_type", "data", "media"),
    [
        ("application/x-www-form-urlencoded", "name=a&url=http%3A%2F%2F127.0.0.1%3A9100%2F", "x-www-form-urlencoded"),
        ("text/plain", '{"name": "a", "url": "http://127.0.0.1:9100/"}', "text/plain"),
        ("", '{"name": "a", "url": "http://127.0.0.1:9100/"}', "no Content-Type"),
    ],
)
def test_a_body_that_is_not_json_is_415_with_a_hint(editor, content_type, data, media):
    assert_415(editor.generic("POST", f"{API}/agents", data, content_type=content_type), media)


def test_multipart_is_refused_too(editor):
    response = editor.post(f"{API}/agents", {"name": "a", "url": "http://127.0.0.1:9100/"}, format="multipart")
    assert_415(response, "multipart/form-data")


def test_415_on_update_and_execute_too(editor, operator):
    agent = AgentFactory()
    assert_415(editor.generic("PUT", f"{API}/agents/{agent.id}", "timeout_ms=2000", content_type="text/plain"), "text")
    workflow = workflow_with_agents("x")
    form = "input_data=1"
    response = operator.generic(
        "POST", f"{API}/workflows/{workflow.id}/execute", form, content_type="application/x-www-form-urlencoded"
    )
    assert_415(response, "form")


def test_json_with_a_charset_and_bodiless_posts_still_work(editor, operator):
    body = '{"name": "a", "url": "http://127.0.0.1:9100/"}'
    response = editor.generic("POST", f"{API}/agents", body, content_type="application/json; charset=utf-8")
    assert response.status_code == 201
    workflow = workflow_with_agents("x")
    assert operator.post(f"{API}/workflows/{workflow.id}/execute").status_code == 202  # no body, no type


def test_the_token_endpoint_wants_json(anon):
    response = Client().post(f"{API}/auth/token", {"username": "u", "password": "p"})  # a form post
    assert_415(response, "multipart/form-data")


@pytest.mark.parametrize(
    ("role", "method", "path", "needed"),
    [
        ("viewer", "post", "/agents", "editor"),
        ("operator", "delete", "/agents/{agent}", "editor"),
        ("viewer", "post", "/workflows/{workflow}/execute", "operator"),
        ("editor", "get", "/api-keys", "admin"),
        ("operator", "get", "/audit-logs", "admin"),
    ],
)
def test_403_names_the_role_needed_and_the_callers(client_for, role, method, path, needed):
    client = client_for(role)
    path = path.format(agent=AgentFactory().id, workflow=workflow_with_agents("r").id)
    response = getattr(client, method)(f"{API}{path}", {}, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "permission_denied" and body["status_code"] == 403 and body["request_id"]
    assert body["detail"] == f"This action needs the {needed} role; your role is {role}"


def test_403_without_a_role(client_for):
    client = client_for("viewer")
    client.user.groups.clear()
    Group.objects.filter(name="viewer").delete()
    session = Client()
    session.force_login(client.user)
    response = session.get(f"{API}/agents")
    assert response.status_code == 403
    assert response.json()["detail"] == "This action needs the viewer role; you have no role"
