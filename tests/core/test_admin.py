"""The admin: pages load, history shows who changed what, and read-only models stay read-only."""

import json

import pytest

from audit.models import AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_changelists_load(staff, editor):
    AgentFactory()
    for url in [
        "/admin/",
        "/admin/agents/agent/",
        "/admin/workflows/workflow/",
        "/admin/audit/auditevent/",
        "/admin/core/apikey/",
        "/admin/agents/agent/?status__exact=active&q=agent",
    ]:
        assert staff.get(url).status_code == 200, url


def test_history_shows_who_changed_an_agent(staff, editor):
    created = editor.post("/api/v1/agents", {"name": "tracked", "url": "http://127.0.0.1:1/"}, format="json").json()
    editor.patch(f"/api/v1/agents/{created['id']}", {"timeout_ms": 5000}, format="json")
    page = staff.get(f"/admin/agents/agent/{created['id']}/history/")
    assert page.status_code == 200
    html = page.content.decode()
    assert editor.user.username in html
    assert "5000" in html  # history_list_display shows the changed field


def test_history_of_a_workflow(staff, editor):
    AgentFactory(name="A")
    definition = {"name": "w", "start_step": "s", "steps": {"s": {"id": "s", "agent_name": "A", "next_step": None}}}
    created = editor.post("/api/v1/workflows", definition, format="json").json()
    editor.patch(f"/api/v1/workflows/{created['id']}", {"description": "changed"}, format="json")
    page = staff.get(f"/admin/workflows/workflow/{created['id']}/history/")
    assert page.status_code == 200 and editor.user.username in page.content.decode()
    detail = staff.get(f"/admin/workflows/workflow/{created['id']}/change/")
    assert detail.status_code == 200


def test_admin_edits_go_through_the_services(staff):
    agent = AgentFactory(name="via-admin", timeout_ms=30000)
    response = staff.post(
        f"/admin/agents/agent/{agent.id}/change/",
        {
            "name": "via-admin",
            "url": agent.url,
            "description": "",
            "timeout_ms": 6000,
            "retry_config": json.dumps(agent.retry_config),
            "status": "active",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="agent.update")
    assert event.user == "boss" and event.changes["timeout_ms"] == [30000, 6000]
    staff.post(f"/admin/agents/agent/{agent.id}/delete/", {"post": "yes"})
    agent.refresh_from_db()
    assert agent.status == "deleted"  # a soft delete, as in the API
    assert AuditEvent.objects.filter(action="agent.delete").exists()


def test_audit_events_are_read_only_in_the_admin(staff):
    event = AuditEvent.objects.create(action="x.y", resource_type="x", resource_id="1")
    assert staff.get("/admin/audit/auditevent/add/").status_code == 403
    page = staff.get(f"/admin/audit/auditevent/{event.id}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert staff.post(f"/admin/audit/auditevent/{event.id}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.id).exists()


def test_a_conflict_in_the_service_is_a_message_not_a_server_error(staff, monkeypatch):
    """A name taken between the form's check and the save (a concurrent request) reaches the service
    as a domain error; the admin shows it and writes nothing."""
    from agents import services
    from core.errors import Conflict

    def taken(**kwargs):
        raise Conflict("An agent named 'raced' already exists.")

    monkeypatch.setattr(services, "agent_create", taken)
    form = {"name": "raced", "url": "http://127.0.0.1:1/", "description": "", "timeout_ms": 6000}
    form |= {"retry_config": json.dumps({"max_retries": 1}), "status": "active"}
    response = staff.post("/admin/agents/agent/add/", form, follow=True)
    assert response.status_code == 200
    assert "An agent named &#x27;raced&#x27; already exists." in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_a_revoked_api_key_cannot_be_unrevoked_in_the_admin(staff):
    from rest_framework.test import APIClient

    from core.roles import Role
    from core.services import api_key_create, api_key_revoke
    from tests.factories import UserFactory
    from tests.support.admin_forms import form_data

    api_key, raw = api_key_create(user=UserFactory(), role=Role.VIEWER, name="one-way")
    api_key_revoke(api_key=api_key)
    url = f"/admin/core/apikey/{api_key.pk}/change/"
    page = staff.get(url).content.decode()
    data = form_data(page, "apikey_form")
    assert "revoked" not in data  # shown, not a field of the form
    staff.post(url, {**data, "revoked": ""})  # a cleared checkbox, as a crafted post would send it
    api_key.refresh_from_db()
    assert api_key.revoked
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    assert client.get("/api/v1/agents").status_code == 401
    # Keys are revoked, never deleted: the row stays for the record.
    assert staff.post(f"/admin/core/apikey/{api_key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(action="api_key.revoke").count() == 1
