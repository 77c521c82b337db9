"""The agents admin page: "Check health" runs the API's health check (bounded by AGENT_HEALTH_TIMEOUT_SECONDS)
and shows the card, latency and errors; "Used by" links the workflows whose current definition names the
agent; the list page makes a fixed number of queries."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from agents.models import Agent
from audit.models import AuditEvent
from core.roles import Role
from tests.agents.test_agent_origin import admin_form
from tests.factories import AgentFactory
from tests.runs.helpers import chain
from tests.runs.test_admin import login
from tests.support.http_server import StubServer
from workflows.services import workflow_create, workflow_delete, workflow_update

pytestmark = pytest.mark.django_db

CARD = {"name": "Echo", "version": "1.0.0", "description": "Echoes.", "skills": [{"id": "echo", "name": "Echo"}]}


def staff_with(role: Role | None) -> Client:
    """A staff user who may view agents in the admin, holding `role` (or none)."""
    user = get_user_model().objects.create_user(f"staff-{role}", "", "pw-123456-long", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_agent"))
    if role is not None:
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    client = Client()
    assert client.login(username=user.username, password="pw-123456-long")
    return client


def page(client, agent, **params) -> str:
    response = client.get(f"/admin/agents/agent/{agent.id}/change/", params)
    assert response.status_code == 200
    return response.content.decode()


def test_check_health_shows_the_card_and_latency_for_a_viewer():
    viewer = staff_with(Role.VIEWER)
    with StubServer({"/.well-known/agent-card.json": (200, CARD, 0)}) as server:
        agent = AgentFactory(url=server.url + "/")
        before = page(viewer, agent)
        assert 'name="_check_health"' in before and 'id="health-result"' not in before
        shown = page(viewer, agent, check_health=1)
    assert 'id="health-result"' in shown and '<span class="wf-badge wf-tone-success">healthy</span>' in shown
    assert "<strong>Echo</strong> 1.0.0 &middot; skills: Echo" in shown
    assert re.search(r"[\d.]+ ms", shown) and "HTTP 200" in shown
    assert f"{server.url}/.well-known/agent-card.json" in shown
    card = re.search(r'<pre id="health-card">(.*?)</pre>', shown, re.S)[1]
    assert "&quot;name&quot;: &quot;Echo&quot;" in card and "&quot;skills&quot;" in card
    assert len(server.requests) == 1  # the page alone fetches nothing


def test_check_health_shows_the_error_of_an_unhealthy_agent():
    staff = login("boss", superuser=True)
    agent = AgentFactory(url="http://127.0.0.1:1/")
    shown = page(staff, agent, check_health=1)
    assert '<span class="wf-badge wf-tone-danger">unhealthy</span>' in shown
    assert re.search(r'<p class="wf-error-box" id="health-error">Could not reach http://127.0.0.1:1/', shown)
    assert 'id="health-card"' not in shown


@override_settings(AGENT_HEALTH_TIMEOUT_SECONDS=1)
def test_check_health_is_bounded_by_the_setting_not_the_agents_timeout():
    staff = login("boss", superuser=True)
    with StubServer({"/.well-known/agent-card.json": (200, CARD, 1.5)}) as server:
        shown = page(staff, AgentFactory(url=server.url, timeout_ms=30_000), check_health=1)
    assert "Timed out after 1000 ms" in shown


def test_without_a_role_there_is_no_button_and_no_check():
    nobody = staff_with(None)
    with StubServer({"/.well-known/agent-card.json": (200, CARD, 0)}) as server:
        agent = AgentFactory(url=server.url)
        shown = page(nobody, agent, check_health=1)
    assert 'name="_check_health"' not in shown and 'id="health-result"' not in shown
    assert server.requests == []


USED_BY = r'<li><a href="(/admin/workflows/workflow/[^"]+/change/)">([^<]+)</a></li>'


def workflow_using(name: str, *agents: str):
    return workflow_create(user=None, definition=chain(*agents, name=name))


def test_used_by_lists_the_live_workflows_naming_the_agent_in_their_latest_version():
    staff = login("boss", superuser=True)
    agent, other = AgentFactory(name="summarizer"), AgentFactory(name="summarizer-2")
    uses = workflow_using("uses-it", "summarizer-2", "summarizer")
    workflow_using("other-only", "summarizer-2")  # a name that contains the agent's is not a use
    moved = workflow_using("moved-away", "summarizer")
    workflow_update(workflow=moved, user=None, definition=chain("summarizer-2", name="moved-away"))
    gone = workflow_using("deleted-one", "summarizer")
    workflow_delete(workflow=gone, user=None)

    shown = page(staff, agent)
    used = re.findall(USED_BY, shown)
    assert used == [(f"/admin/workflows/workflow/{uses.pk}/change/", "uses-it v1")]
    assert staff.get(used[0][0]).status_code == 200
    other_used = re.findall(
        r'<li><a href="/admin/workflows/workflow/[^"]+/change/">([^<]+)</a></li>', page(staff, other)
    )
    assert other_used == ["moved-away v2", "other-only v1", "uses-it v1"]


def test_used_by_when_no_workflow_uses_it():
    staff = login("boss", superuser=True)
    assert "No workflow uses this agent." in page(staff, AgentFactory())


def change_page_queries(client, agent) -> int:
    with CaptureQueriesContext(connection) as queries:
        page(client, agent)
    return len(queries)


def test_used_by_is_one_query_however_many_workflows():
    staff = login("boss", superuser=True)
    agent = AgentFactory(name="shared")
    workflow_using("w-0", "shared")
    few = change_page_queries(staff, agent)
    for index in range(1, 8):
        workflow_using(f"w-{index}", "shared")
    assert change_page_queries(staff, agent) == few
    assert page(staff, agent).count('<li><a href="/admin/workflows/workflow/') == 8


def test_the_list_page_makes_a_fixed_number_of_queries(django_assert_max_num_queries):
    staff = login("boss", superuser=True)
    AgentFactory.create_batch(3)
    with CaptureQueriesContext(connection) as few:
        assert staff.get("/admin/agents/agent/").status_code == 200
    AgentFactory.create_batch(30)
    with django_assert_max_num_queries(len(few)):
        response = staff.get("/admin/agents/agent/")
    assert response.status_code == 200
    assert response.content.decode().count('name="_selected_action"') == 33


def test_auth_settings_are_editable_and_the_secret_write_only():
    """bearer -> apikey with its header, through the service (audited, secrets masked); the page never
    shows a stored secret, not even in the password input."""
    staff = login("boss", superuser=True)
    agent = AgentFactory(url="http://127.0.0.1:9001/", auth_type="bearer", auth_config={"token": "tok-1"})
    change = f"/admin/agents/agent/{agent.id}/change/"
    html = staff.get(change).content.decode()
    assert "tok-1" not in html and 'name="secret"' in html and 'name="auth_type"' in html

    switched = admin_form(staff, agent, auth_type="apikey", secret="key-2", header_name="X-Agent-Key")
    assert staff.post(change, switched).status_code == 302
    agent = Agent.objects.get(pk=agent.pk)
    assert (agent.auth_type, agent.auth_config) == ("apikey", {"key": "key-2", "header_name": "X-Agent-Key"})
    event = AuditEvent.objects.filter(action="agent.update").latest("created_at")
    assert "key-2" not in str(event.changes) and event.user == "boss"
    html = staff.get(change).content.decode()
    assert "key-2" not in html and "X-Agent-Key" in html  # the header name is no secret

    kept = admin_form(staff, agent, header_name="X-Other")  # no new key: the stored one stays
    assert staff.post(change, kept).status_code == 302
    agent.refresh_from_db()
    assert agent.auth_config == {"key": "key-2", "header_name": "X-Other"}

    to_none = admin_form(staff, agent, auth_type="none")
    assert staff.post(change, to_none).status_code == 302
    agent.refresh_from_db()
    assert (agent.auth_type, agent.auth_config) == ("none", {})


def test_auth_errors_are_shown_on_their_fields():
    staff = login("boss", superuser=True)
    agent = AgentFactory(url="http://127.0.0.1:9001/")
    change = f"/admin/agents/agent/{agent.id}/change/"
    needs_token = staff.post(change, admin_form(staff, agent, auth_type="bearer"))
    assert needs_token.status_code == 200
    assert needs_token.context["adminform"].form.errors["secret"] == ["Required when auth_type is 'bearer'."]
    no_secret = staff.post(change, admin_form(staff, agent, secret="stray"))
    assert no_secret.context["adminform"].form.errors["secret"] == ["This auth type has no secret."]
    agent.refresh_from_db()
    assert (agent.auth_type, agent.auth_config) == ("none", {})
