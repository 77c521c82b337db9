import pytest

from tests.factories import AgentFactory
from tests.support.http_server import StubServer

pytestmark = pytest.mark.django_db

CARD = {"name": "Echo", "version": "1.0.0", "url": "http://x/", "skills": [{"id": "echo", "name": "Echo"}]}


def check(client, agent):
    response = client.get(f"/api/v1/agents/{agent.id}/health")
    assert response.status_code == 200, response.content
    return response.json()


def test_healthy_agent_reports_card_and_latency(viewer):
    with StubServer({"/.well-known/agent-card.json": (200, CARD, 0)}) as server:
        body = check(viewer, AgentFactory(url=server.url + "/"))
    assert body["status"] == "healthy"
    assert body["card"] == CARD
    assert body["http_status"] == 200
    assert body["card_url"] == server.url + "/.well-known/agent-card.json"
    assert body["latency_ms"] >= 0
    assert body["error"] is None


def test_falls_back_to_the_older_card_path(viewer):
    with StubServer({"/.well-known/agent.json": (200, CARD, 0)}) as server:
        body = check(viewer, AgentFactory(url=server.url))
    assert body["status"] == "healthy"
    assert body["card_url"].endswith("/.well-known/agent.json")


def test_card_is_fetched_with_the_agents_auth(viewer):
    with StubServer({"/.well-known/agent-card.json": (200, CARD, 0)}) as server:
        check(viewer, AgentFactory(url=server.url, auth_type="bearer", auth_config={"token": "tok-1"}))
        check(
            viewer, AgentFactory(url=server.url, auth_type="apikey", auth_config={"key": "k-2", "header_name": "X-K"})
        )
    assert server.requests[0][1]["Authorization"] == "Bearer tok-1"
    assert server.requests[1][1]["X-K"] == "k-2"


def test_agent_mounted_under_a_path_finds_the_card_at_the_origin(viewer):
    with StubServer({"/.well-known/agent-card.json": (200, CARD, 0)}) as server:
        body = check(viewer, AgentFactory(url=server.url + "/a2a/v1"))
    assert body["status"] == "healthy"
    assert body["card_url"] == server.url + "/.well-known/agent-card.json"


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({}, "No agent card found"),
        ({"/.well-known/agent-card.json": (500, {"e": 1}, 0)}, "HTTP 500"),
        ({"/.well-known/agent-card.json": (200, b"<html>", 0)}, "did not return JSON"),
        ({"/.well-known/agent-card.json": (200, [1, 2], 0)}, "not return a JSON object"),
        ({"/.well-known/agent-card.json": (200, CARD, 1.5)}, "Timed out after 1000 ms"),
    ],
)
def test_unhealthy_agents_say_why(viewer, routes, message):
    with StubServer(routes) as server:
        body = check(viewer, AgentFactory(url=server.url, timeout_ms=1000))
    assert body["status"] == "unhealthy"
    assert message in body["error"]
    assert body["card"] is None


def test_unreachable_agent(viewer):
    body = check(viewer, AgentFactory(url="http://127.0.0.1:1/"))
    assert body["status"] == "unhealthy"
    assert "Could not reach" in body["error"]


def test_health_of_unknown_or_deleted_agent_is_404(viewer):
    assert viewer.get("/api/v1/agents/8b0c2b7e-1111-4a4a-9b9b-123456789abc/health").status_code == 404
    agent = AgentFactory(status="deleted")
    assert viewer.get(f"/api/v1/agents/{agent.id}/health").status_code == 404
