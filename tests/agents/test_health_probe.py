"""The health check is no probe into internal services (issue 13, point 7): it fetches agent cards at their
well-known paths and nothing else, reports only what a card says, and is over within a bounded time.

Viewers may call it, so before: an agent URL ending in `?` or `#` made it fetch the URL's own path (the
card path went into the query or fragment) and echo whatever JSON came back; and it waited up to the
agent's timeout (5 minutes) per card path."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings
from werkzeug import Response

from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
CARD_PATHS = ["/.well-known/agent-card.json", "/.well-known/agent.json"]
INTERNAL = {"name": "not-a-card", "db_password": "hunter2-internal", "rows": [1, 2, 3]}


def health(viewer, agent) -> tuple[dict, str]:
    response = viewer.get(f"/api/v1/agents/{agent.id}/health")
    assert response.status_code == 200, response.content
    return response.json(), response.content.decode()


def paths(httpserver) -> list[str]:
    return [request.full_path.rstrip("?") for request, _ in httpserver.log]


@pytest.mark.parametrize("tail", ["?", "?q=", "#", "?a=1#frag", "/?x"])
def test_a_query_or_fragment_never_moves_the_card_path(viewer, httpserver, tail):
    httpserver.expect_request("/internal/admin").respond_with_json(INTERNAL)
    httpserver.no_handler_status_code = 404  # no card anywhere: every card path is tried
    body, raw = health(viewer, AgentFactory(url=httpserver.url_for("/internal/admin") + tail))
    fetched = paths(httpserver)
    assert fetched == [f"/internal/admin{path}" for path in CARD_PATHS] + CARD_PATHS
    assert body["status"] == "unhealthy" and body["card"] is None
    assert "hunter2-internal" not in raw
    assert body["card_url"] == httpserver.url_for(CARD_PATHS[-1])


def test_only_the_cards_own_fields_are_reported(viewer, httpserver):
    card = {"name": "Echo", "version": "1.0.0", "skills": [{"id": "echo", "name": "Echo"}], "protocolVersion": "0.3.0"}
    httpserver.expect_request(CARD_PATHS[0]).respond_with_json({**card, **INTERNAL, "name": "Echo"})
    body, raw = health(viewer, AgentFactory(url=httpserver.url_for("/")))
    assert body["status"] == "healthy" and body["card"] == card
    assert "hunter2-internal" not in raw and "rows" not in body["card"]


def test_json_that_is_no_agent_card_is_not_echoed(viewer, httpserver):
    httpserver.expect_request(CARD_PATHS[0]).respond_with_json({"db_password": "hunter2-internal"})
    body, raw = health(viewer, AgentFactory(url=httpserver.url_for("/")))
    assert body["status"] == "unhealthy" and body["card"] is None
    assert "not an agent card" in body["error"] and "hunter2-internal" not in raw


def slow(seconds: float):
    def handler(request):
        time.sleep(seconds)
        return Response("{}", status=404, content_type="application/json")

    return handler


def drip(request):
    def chunks():
        yield b'{"name": "slow", "x": "'
        for _ in range(40):
            time.sleep(0.1)
            yield b"a"
        yield b'"}'

    return Response(chunks(), content_type="application/json")


@override_settings(AGENT_HEALTH_TIMEOUT_SECONDS=1)
@pytest.mark.parametrize("behaviour", ["slow", "drip"])
def test_the_whole_check_is_bounded_by_the_setting_not_the_agents_timeout(viewer, httpserver, behaviour):
    """Four card URLs that each answer 404 after 0.6 s, or a card sent a byte every 0.1 s: the check
    ends at AGENT_HEALTH_TIMEOUT_SECONDS in all, however long the agent's own timeout."""
    for path in CARD_PATHS:
        if behaviour == "slow":
            httpserver.expect_request(f"/a2a{path}").respond_with_handler(slow(0.6))
            httpserver.expect_request(path).respond_with_handler(slow(0.6))
        else:
            httpserver.expect_request(f"/a2a{path}").respond_with_handler(drip)
    agent = AgentFactory(url=httpserver.url_for("/a2a"), timeout_ms=300_000)
    started = time.monotonic()
    body, _ = health(viewer, agent)
    assert time.monotonic() - started < 1.8
    assert body["status"] == "unhealthy" and "Timed out after 1000 ms" in body["error"]


@pytest.mark.parametrize("value", ["0", "31", "600"])
def test_the_bound_itself_is_bounded(value):
    env = {**os.environ, "AGENT_HEALTH_TIMEOUT_SECONDS": value}
    done = subprocess.run(
        [sys.executable, "-c", "import config.settings"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "AGENT_HEALTH_TIMEOUT_SECONDS must be" in done.stderr
