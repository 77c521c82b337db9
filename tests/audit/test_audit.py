from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from audit.models import AppendOnlyError, AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit-logs"
AGENT = {"name": "audited", "url": "http://127.0.0.1:9/", "auth_type": "bearer", "auth_config": {"token": "s3cr3t"}}


def events(action):
    return list(AuditEvent.objects.filter(action=action))


def test_agent_create_update_delete_are_audited_with_masked_secrets(editor):
    created = editor.post(
        "/api/v1/agents", AGENT, format="json", HTTP_X_REQUEST_ID="req-create", REMOTE_ADDR="10.1.2.3"
    ).json()
    [event] = events("agent.create")
    assert (event.user, event.resource_type, event.resource_id) == (editor.user.username, "agent", created["id"])
    assert event.request_id == "req-create" and event.ip == "10.1.2.3"
    assert event.api_key_prefix == editor.api_key.prefix
    assert event.changes["name"] == [None, "audited"]
    assert event.changes["auth_config"] == [{}, {"token": "********"}]
    assert "s3cr3t" not in str(event.changes)

    editor.patch(
        f"/api/v1/agents/{created['id']}", {"timeout_ms": 5000, "auth_config": {"token": "new"}}, format="json"
    )
    [event] = events("agent.update")
    assert event.changes["timeout_ms"] == [30000, 5000]
    assert event.changes["auth_config"] == [{"token": "********"}, {"token": "********"}]
    assert "new" not in str(event.changes["auth_config"])

    editor.delete(f"/api/v1/agents/{created['id']}")
    [event] = events("agent.delete")
    assert event.changes == {"status": ["active", "deleted"]}


def test_update_that_changes_nothing_is_not_audited(editor):
    agent = AgentFactory()
    editor.patch(f"/api/v1/agents/{agent.id}", {"description": agent.description}, format="json")
    assert not events("agent.update")


def test_failed_change_leaves_no_audit_event(editor):
    AgentFactory(name="taken")
    assert editor.post("/api/v1/agents", {**AGENT, "name": "taken"}, format="json").status_code == 409
    assert editor.post("/api/v1/agents", {**AGENT, "url": "ftp://x"}, format="json").status_code == 422
    assert not AuditEvent.objects.filter(resource_type="agent").exists()


def test_api_keys_are_audited(admin):
    created = admin.post("/api/v1/api-keys", {"name": "ci", "role": "viewer"}, format="json").json()
    [event] = AuditEvent.objects.filter(action="api_key.create", resource_id=created["id"])
    assert event.user == admin.user.username
    assert event.changes["role"] == [None, "viewer"] and created["key"] not in str(event.changes)
    admin.post(f"/api/v1/api-keys/{created['id']}/revoke")
    [event] = events("api_key.revoke")
    assert event.resource_id == created["id"] and event.user == admin.user.username


def test_list_filters_and_detail(admin, editor):
    first = editor.post("/api/v1/agents", AGENT, format="json").json()
    editor.post("/api/v1/agents", {**AGENT, "name": "second"}, format="json")
    editor.delete(f"/api/v1/agents/{first['id']}")
    body = admin.get(URL, {"resource_type": "agent"}).json()
    assert body["total"] == 3
    assert [e["action"] for e in body["items"]] == ["agent.delete", "agent.create", "agent.create"]
    assert admin.get(URL, {"action": "agent.delete"}).json()["total"] == 1
    assert admin.get(URL, {"action": "agent.delete,agent.create"}).json()["total"] == 3
    assert admin.get(URL, {"action": ["agent.delete", "agent.create"]}).json()["total"] == 3
    assert admin.get(URL, {"user": editor.user.username, "resource_type": "agent"}).json()["total"] == 3
    assert admin.get(URL, {"user": "nobody"}).json()["total"] == 0
    assert admin.get(URL, {"resource_type": "agent", "resource_id": first["id"]}).json()["total"] == 2
    now = timezone.now()
    recent = {"resource_type": "agent", "created_after": (now - timedelta(minutes=1)).isoformat()}
    assert admin.get(URL, recent).json()["total"] == 3
    assert admin.get(URL, {"created_before": (now - timedelta(minutes=1)).isoformat()}).json()["total"] == 0
    item = body["items"][0]
    assert admin.get(f"{URL}/{item['id']}").json() == item


def test_bad_filters_are_422(admin):
    response = admin.get(URL, {"created_after": "yesterday"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "created_after"


def test_there_are_no_write_endpoints(admin):
    event = AuditEvent.objects.create(action="x.y", resource_type="x", resource_id="1")
    assert admin.post(URL, {}, format="json").status_code == 405
    assert admin.put(f"{URL}/{event.id}", {}, format="json").status_code == 405
    assert admin.patch(f"{URL}/{event.id}", {}, format="json").status_code == 405
    assert admin.delete(f"{URL}/{event.id}").status_code == 405


def test_events_cannot_be_changed_or_deleted_one_by_one():
    event = AuditEvent.objects.create(action="x.y", resource_type="x", resource_id="1")
    event.action = "forged"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_purge_deletes_only_events_past_retention(capsys):
    now = timezone.now()
    old = AuditEvent.objects.create(
        action="a.old", resource_type="x", resource_id="1", created_at=now - timedelta(days=366)
    )
    kept = AuditEvent.objects.create(
        action="a.new", resource_type="x", resource_id="2", created_at=now - timedelta(days=364)
    )
    call_command("purge_audit_logs", "--dry-run")
    assert "Would delete 1" in capsys.readouterr().out
    assert AuditEvent.objects.count() == 2
    call_command("purge_audit_logs")
    assert "Deleted 1" in capsys.readouterr().out
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not AuditEvent.objects.filter(pk=old.pk).exists()


def test_retention_shorter_than_90_days_refuses_to_start():
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "x", "AUDIT_RETENTION_DAYS": "30"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "AUDIT_RETENTION_DAYS must be at least 90" in result.stderr


@override_settings(AUDIT_RETENTION_DAYS=90)
def test_purge_follows_the_setting():
    AuditEvent.objects.create(
        action="a", resource_type="x", resource_id="1", created_at=timezone.now() - timedelta(days=91)
    )
    call_command("purge_audit_logs")
    assert not AuditEvent.objects.exists()
