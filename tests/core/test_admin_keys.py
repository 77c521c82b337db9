"""API keys in the admin: created through the service with the raw key shown once, revoked by a button
and an action, for the admin role only; every object page links to its audit events."""

import re
import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from core.admin_mixins import audit_list_url
from core.models import ApiKey
from core.roles import Role
from core.services import api_key_create
from tests.core.test_admin_lists import MAKERS, REGISTERED
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ADD = "/admin/core/apikey/add/"


def raw_key_of(html: str) -> str:
    found = re.search(r'<pre class="wf-secret" id="raw-key">([^<]+)</pre>', html)
    assert found, html[:3000]
    return found.group(1).strip()


def test_creating_a_key_shows_it_once_and_it_works(staff):
    owner = UserFactory(username="ci-bot")
    owner.groups.add(Group.objects.get_or_create(name=Role.OPERATOR)[0])
    response = staff.post(ADD, {"name": "ci", "role": "operator", "user": owner.pk, "expires_at": "2099-01-02T03:04"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = raw_key_of(response.content.decode())
    key = ApiKey.objects.get(name="ci")
    assert key.user == owner and key.role == "operator" and key.created_by.username == "boss"
    assert key.expiry_date.isoformat().startswith("2099-01-02T03:04")
    assert raw not in str(ApiKey.objects.values_list().get(pk=key.pk))  # only its hash is stored
    event = AuditEvent.objects.get(action="api_key.create")
    assert event.user == "boss" and event.resource_id == str(key.pk) and raw not in str(event.changes)
    # Shown once: neither the key's page nor any later page (no message in the session) repeats it.
    for url in (reverse("admin:core_apikey_change", args=[key.pk]), "/admin/core/apikey/", "/admin/"):
        assert raw not in staff.get(url).content.decode()
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=raw)
    assert api.get("/api/v1/runs").status_code == 200


def test_a_key_without_a_user_is_the_creators(staff):
    staff.post(ADD, {"name": "mine", "role": "viewer"})
    assert ApiKey.objects.get(name="mine").user.username == "boss"


def test_the_form_shows_errors_per_field_and_creates_nothing(staff):
    response = staff.post(ADD, {"name": "", "role": "root", "expires_at": "2001-01-01T00:00"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"name", "role", "expires_at"} and "Must be in the future." in errors["expires_at"]
    assert 'class="wf-field-error"' in response.content.decode()
    assert not ApiKey.objects.exists() and not AuditEvent.objects.exists()


@pytest.fixture
def editor_staff(db):
    """A staff member of the editor role with every model permission: still no key pages."""
    user = UserFactory(username="ed", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=Role.EDITOR)[0])
    user.user_permissions.set(Permission.objects.all())
    client = Client()
    client.force_login(user)
    return client


def test_keys_are_for_the_admin_role_only(editor_staff):
    key, _ = api_key_create(user=UserFactory(), role=Role.VIEWER, name="other")
    assert editor_staff.get(ADD).status_code == 403
    assert editor_staff.post(ADD, {"name": "x", "role": "admin"}).status_code == 403
    assert editor_staff.get("/admin/core/apikey/").status_code == 403
    assert editor_staff.post(reverse("admin:core_apikey_revoke", args=[key.pk])).status_code == 403
    key.refresh_from_db()
    assert not key.revoked and ApiKey.objects.count() == 1


def test_revoke_button_on_the_keys_page(staff):
    key, raw = api_key_create(user=UserFactory(), role=Role.VIEWER, name="old")
    page_url = reverse("admin:core_apikey_change", args=[key.pk])
    revoke_url = reverse("admin:core_apikey_revoke", args=[key.pk])
    assert f'action="{revoke_url}"' in staff.get(page_url).content.decode()
    assert staff.get(revoke_url).status_code == 405  # a GET changes nothing
    response = staff.post(revoke_url, follow=True)
    key.refresh_from_db()
    assert key.revoked and key.revoked_at is not None
    html = response.content.decode()
    assert "Revoked the key old" in html and f'action="{revoke_url}"' not in html and 'id="api-key-revoked"' in html
    assert AuditEvent.objects.filter(action="api_key.revoke", resource_id=str(key.pk), user="boss").count() == 1
    again = staff.post(revoke_url, follow=True)  # already revoked: the service's conflict, as a message
    assert "already revoked" in again.content.decode()
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=raw)
    assert api.get("/api/v1/runs").status_code in (401, 403)


def test_revoke_action_on_the_list(staff):
    keys = [api_key_create(user=UserFactory(), role=Role.VIEWER, name=f"k{i}")[0] for i in range(2)]
    staff.post("/admin/core/apikey/", {"action": "revoke_keys", "_selected_action": [str(k.pk) for k in keys]})
    assert ApiKey.objects.filter(revoked=True).count() == 2
    assert AuditEvent.objects.filter(action="api_key.revoke").count() == 2


# Pages of objects: the audit list filtered to the object, under the type name its services write.
AUDITED = {
    "agents.agent": "agent",
    "workflows.workflow": "workflow",
    "webhooks.webhookendpoint": "webhook",
    "schedules.schedule": "schedule",
    "auth.user": "user",
    "core.apikey": "api_key",
    "runs.run": "run",
}


@pytest.mark.parametrize("label", sorted(AUDITED))
def test_object_pages_link_to_their_audit_events(staff, label):
    model = next(model for model in REGISTERED if model._meta.label_lower == label)
    obj = MAKERS[label](0)
    mine = AuditEvent.objects.create(
        action=f"{AUDITED[label]}.update", resource_type=AUDITED[label], resource_id=obj.pk
    )
    other = AuditEvent.objects.create(action="x.update", resource_type=AUDITED[label], resource_id=str(uuid.uuid4()))
    opts = model._meta
    html = staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])).content.decode()
    link = audit_list_url(AUDITED[label], obj.pk)
    assert f'href="{link.replace("&", "&amp;")}"' in html and "History / audit" in html
    listed = [event.pk for event in staff.get(link).context["cl"].result_list]
    assert mine.pk in listed and other.pk not in listed  # (the maker's own events are the object's too)
    assert set(AuditEvent.objects.filter(pk__in=listed).values_list("resource_id", flat=True)) == {str(obj.pk)}


def test_audit_list_filters_and_search(staff):
    AuditEvent.objects.create(user="ann", action="agent.create", resource_type="agent", resource_id="a1")
    AuditEvent.objects.create(user="bob", action="run.cancel", resource_type="run", resource_id="r1")

    def shown(query):
        return [e.resource_id for e in staff.get("/admin/audit/auditevent/", query).context["cl"].result_list]

    assert shown({"action__icontains": "cancel"}) == ["r1"]
    assert shown({"resource_type__exact": "agent"}) == ["a1"]
    assert shown({"user__icontains": "ann"}) == ["a1"]
    assert shown({"q": "r1"}) == ["r1"]
    assert sorted(shown({"created_at_from_0": "2000-01-01", "created_at_from_1": "00:00"})) == ["a1", "r1"]
    assert shown({"created_at_to_0": "2000-01-01", "created_at_to_1": "00:00"}) == []
