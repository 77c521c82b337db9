"""PUT keeps the fields it leaves out, `auth_config: null` is `{}`, and the health check answers the older
API's field names too: what the older web UI sends and reads."""

import pytest

from agents.models import Agent
from tests.factories import AgentFactory
from tests.support.http_server import StubServer

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"
CARD = {"name": "Echo", "description": "Echoes text.", "version": "1.0.0", "skills": [{"id": "echo", "name": "Echo"}]}


def test_put_with_only_some_fields_keeps_the_others(editor):
    agent = AgentFactory(
        name="keeper",
        description="before",
        timeout_ms=7000,
        auth_type="bearer",
        auth_config={"token": "s3cret"},
        retry_config={"max_retries": 2, "initial_delay_ms": 100, "max_delay_ms": 1000, "backoff_multiplier": 2.0},
    )
    response = editor.put(f"{URL}/{agent.id}", {"timeout_ms": 9000}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["url"], body["description"]) == ("keeper", agent.url, "before")
    assert body["timeout_ms"] == 9000
    assert body["auth_type"] == "bearer" and body["auth_config"] == {"token": "********"}
    assert body["retry_config"]["max_retries"] == 2
    agent.refresh_from_db()
    assert agent.auth_config == {"token": "s3cret"} and agent.timeout_ms == 9000


def test_put_still_validates_what_it_sends(editor):
    agent = AgentFactory()
    for body, field in [({"timeout_ms": 5}, "timeout_ms"), ({"nope": 1}, "nope"), ({"name": " "}, "name")]:
        response = editor.put(f"{URL}/{agent.id}", body, format="json")
        assert response.status_code == 422
        assert [error["field"] for error in response.json()["errors"]] == [field]


def test_auth_config_null_means_empty(editor):
    created = editor.post(
        URL, {"name": "open", "url": "http://127.0.0.1:9100/", "auth_type": "none", "auth_config": None}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["auth_config"] == {}
    assert Agent.objects.get(name="open").auth_config == {}


def test_auth_config_null_drops_the_secret_when_switching_to_none(editor):
    agent = AgentFactory(auth_type="bearer", auth_config={"token": "s3cret"})
    response = editor.put(f"{URL}/{agent.id}", {"auth_type": "none", "auth_config": None}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["auth_config"] == {}
    agent.refresh_from_db()
    assert (agent.auth_type, agent.auth_config) == ("none", {})


def test_auth_config_null_with_bearer_asks_for_the_token(editor):
    # null is {}: a bearer agent without a token is refused, not silently left without auth
    agent = AgentFactory(auth_type="bearer", auth_config={"token": "s3cret"})
    response = editor.put(f"{URL}/{agent.id}", {"auth_config": None}, format="json")
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["auth_config.token"]


def test_put_and_its_rule_are_documented(anon):
    schema = anon.get("/openapi.json").json()
    put = schema["paths"]["/api/v1/agents/{id}"]["put"]
    assert "keep their values" in put["description"]
    body = put["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "name" not in schema["components"]["schemas"][body].get("required", [])


def test_health_has_the_older_field_names(viewer):
    with StubServer({"/.well-known/agent-card.json": (200, CARD, 0)}) as server:
        body = viewer.get(f"{URL}/{AgentFactory(url=server.url + '/').id}/health").json()
    assert body["status"] == "healthy"
    assert body["timestamp"] == body["checked_at"]
    assert body["agent_card"] == body["card"] == CARD
    assert body["message"] == "Echoes text."
    assert isinstance(body["response_time_ms"], int) and body["response_time_ms"] >= 0


def test_health_without_a_description_says_it_responds(viewer):
    card = {key: value for key, value in CARD.items() if key != "description"}
    with StubServer({"/.well-known/agent-card.json": (200, card, 0)}) as server:
        body = viewer.get(f"{URL}/{AgentFactory(url=server.url).id}/health").json()
    assert body["message"] == "Agent is responding"


def test_unhealthy_agent_has_the_error_as_message(viewer):
    with StubServer({"/.well-known/agent-card.json": (500, {"e": 1}, 0)}) as server:
        body = viewer.get(f"{URL}/{AgentFactory(url=server.url).id}/health").json()
    assert body["status"] == "unhealthy"
    assert body["message"] == body["error"] and "HTTP 500" in body["message"]
    assert body["agent_card"] is None
    assert isinstance(body["response_time_ms"], int)  # it answered, with an error


def test_unreachable_agent_has_no_response_time(viewer):
    body = viewer.get(f"{URL}/{AgentFactory(url='http://127.0.0.1:1/').id}/health").json()
    assert body["status"] == "unhealthy"
    assert body["response_time_ms"] is None and body["agent_card"] is None
    assert "Could not reach" in body["message"]
