"""An agent's secret is for the origin it was given with: moving the URL elsewhere drops it (issue 13, point 1).

Before, an editor could PATCH the URL to a host of theirs and the stored token went there with the next
call or health check."""

import json

import pytest

from agents.models import Agent
from audit.models import AuditEvent
from tests.factories import AgentFactory
from tests.support.admin_forms import form_data
from tests.support.http_server import StubServer

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents"
TOKEN, KEY = "tok-origin-5e1f", "key-origin-77aa"
AUTHS = [
    ("bearer", {"token": TOKEN}, "token"),
    ("apikey", {"key": KEY, "header_name": "X-K"}, "key"),
]


def create(editor, url="http://127.0.0.1:9001/a2a", **body) -> dict:
    response = editor.post(URL, {"name": "mover", "url": url, **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def fields(response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


@pytest.mark.parametrize(("auth_type", "auth_config", "secret"), AUTHS)
def test_a_new_origin_needs_the_secret_sent_again(editor, auth_type, auth_config, secret):
    created = create(editor, auth_type=auth_type, auth_config=auth_config)
    detail = f"{URL}/{created['id']}"
    for body in (
        {"url": "http://attacker.example.com/a2a"},
        {"url": "http://attacker.example.com/a2a", "auth_config": created["auth_config"]},  # the mask sent back
        {"url": "https://127.0.0.1:9001/a2a"},  # another scheme
        {"url": "http://127.0.0.1:9002/a2a"},  # another port
    ):
        response = editor.patch(detail, body, format="json")
        assert response.status_code == 422, (body, response.content)
        assert fields(response) == {f"auth_config.{secret}"}
    whole = {**editor.get(detail).json(), "url": "http://attacker.example.com/"}  # GET, edit, PUT back
    response = editor.put(detail, whole, format="json")
    assert response.status_code == 422 and fields(response) == {f"auth_config.{secret}"}
    agent = Agent.objects.get(pk=created["id"])
    assert agent.url == "http://127.0.0.1:9001/a2a" and agent.auth_config == {**auth_config}
    assert not AuditEvent.objects.filter(action="agent.update").exists()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("https://agents.example.com/a2a", "https://AGENTS.Example.com:443/v2/a2a?x=1"),
        ("http://agents.example.com:80/", "HTTP://agents.example.com/other"),
        ("http://127.0.0.1:9001/a2a", "http://127.0.0.1:9001"),
    ],
)
def test_the_same_origin_written_differently_keeps_the_secret(editor, before, after):
    created = create(editor, url=before, auth_type="bearer", auth_config={"token": TOKEN})
    response = editor.patch(f"{URL}/{created['id']}", {"url": after}, format="json")
    assert response.status_code == 200, response.content
    assert Agent.objects.get(pk=created["id"]).auth_config == {"token": TOKEN}


def test_edits_of_other_fields_keep_the_secret(editor):
    created = create(editor, auth_type="apikey", auth_config={"key": KEY})
    detail = f"{URL}/{created['id']}"
    assert editor.patch(detail, {"description": "changed", "timeout_ms": 5000}, format="json").status_code == 200
    whole = {**editor.get(detail).json(), "description": "again", "url": "http://127.0.0.1:9001/a2a/v2"}
    assert editor.put(detail, whole, format="json").status_code == 200
    assert Agent.objects.get(pk=created["id"]).auth_config == {"key": KEY, "header_name": "X-API-Key"}


def test_a_secret_sent_with_the_move_replaces_the_old_one_and_the_drop_is_audited(editor):
    created = create(editor, auth_type="bearer", auth_config={"token": TOKEN})
    new_url = "https://other.example.com/a2a"
    response = editor.patch(
        f"{URL}/{created['id']}", {"url": new_url, "auth_config": {"token": "t-new"}}, format="json"
    )
    assert response.status_code == 200, response.content
    agent = Agent.objects.get(pk=created["id"])
    assert (agent.url, agent.auth_config) == (new_url, {"token": "t-new"})
    [event] = AuditEvent.objects.filter(action="agent.update")
    assert event.changes["url"] == ["http://127.0.0.1:9001/a2a", new_url]
    assert event.changes["secret_dropped"] == [None, ["token"]]
    assert TOKEN not in json.dumps(event.changes) and "t-new" not in json.dumps(event.changes)


def test_a_moved_agent_without_auth_sends_the_old_secret_nowhere(editor, viewer):
    """The exfiltration itself: the URL moved to the attacker's server, then a health check."""
    created = create(editor, auth_type="bearer", auth_config={"token": TOKEN})
    card = {"name": "Mine", "skills": []}
    with StubServer({"/.well-known/agent-card.json": (200, card, 0)}) as server:
        detail = f"{URL}/{created['id']}"
        assert editor.patch(detail, {"url": server.url + "/"}, format="json").status_code == 422
        response = editor.patch(detail, {"url": server.url + "/", "auth_type": "none"}, format="json")
        assert response.status_code == 200, response.content
        assert viewer.get(f"{detail}/health").json()["status"] == "healthy"
    assert Agent.objects.get(pk=created["id"]).auth_config == {}
    assert server.requests and all(TOKEN not in json.dumps(headers) for _, headers in server.requests)
    [event] = AuditEvent.objects.filter(action="agent.update")
    assert event.changes["secret_dropped"] == [None, ["token"]]


def admin_form(staff, agent, **changes) -> dict:
    page = staff.get(f"/admin/agents/agent/{agent.id}/change/")
    assert page.status_code == 200
    form = {name: values[0] for name, values in form_data(page.content.decode(), "agent_form").items()}
    return {**form, **changes}


def test_the_admin_applies_the_same_rule(staff):
    agent = AgentFactory(url="http://127.0.0.1:9001/", auth_type="bearer", auth_config={"token": TOKEN})
    change = f"/admin/agents/agent/{agent.id}/change/"
    page = staff.post(change, admin_form(staff, agent, url="http://attacker.example.com/"), follow=True)
    assert "origin changed: send the secret again" in page.content.decode()
    agent.refresh_from_db()
    assert (agent.url, agent.auth_config) == ("http://127.0.0.1:9001/", {"token": TOKEN})

    assert staff.post(change, admin_form(staff, agent, timeout_ms="7000")).status_code == 302
    agent.refresh_from_db()
    assert (agent.timeout_ms, agent.auth_config) == (7000, {"token": TOKEN})  # other fields keep it

    form = admin_form(staff, agent, url="http://other.example.com/", secret="t-admin")
    assert staff.post(change, form).status_code == 302
    agent.refresh_from_db()
    assert (agent.url, agent.auth_config) == ("http://other.example.com/", {"token": "t-admin"})
    event = AuditEvent.objects.filter(action="agent.update").latest("created_at")
    assert event.user == "boss" and event.changes["secret_dropped"] == [None, ["token"]]
    assert "t-admin" not in json.dumps(event.changes) and TOKEN not in json.dumps(event.changes)
    assert TOKEN not in staff.get(change).content.decode() and "t-admin" not in staff.get(change).content.decode()
