import pytest

from agents.models import Agent

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"


def payload(**overrides):
    body = {"name": "summarizer", "url": "http://127.0.0.1:9001/", "description": "Summarises."}
    body.update(overrides)
    return body


def test_create_returns_201_and_stores_the_agent(editor):
    response = editor.post(URL, payload(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "summarizer"
    assert body["status"] == "active"
    assert body["timeout_ms"] == 30000
    assert body["retry_config"] == {"max_retries": 3, "initial_delay_ms": 1000, "max_delay_ms": 30000,
                                    "backoff_multiplier": 2.0}
    assert body["created_by"] == editor.user.username
    agent = Agent.objects.get(pk=body["id"])
    assert agent.url == "http://127.0.0.1:9001/"
