"""The webhooks API: CRUD for admins only, the secret shown once, rotation, validation with field
paths, lists like every other resource, and the audit trail (never with the secret)."""

import base64
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEvent
from tests.runs.helpers import workflow_with_agents
from tests.webhooks.conftest import endpoint
from webhooks.choices import DeliveryStatus
from webhooks.models import Delivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks"


def payload(**overrides):
    return {"url": "http://127.0.0.1:9/hook", "description": "ops", "event_types": ["run.*"], **overrides}


def errors(response) -> dict[str, str]:
    assert response.status_code == 422, response.content
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def test_create_shows_the_secret_once_and_never_again(admin):
    response = admin.post(URL, payload(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    assert body["event_types"] == ["run.*"] and body["active"] is True and body["workflow_id"] is None
    assert body["created_by"] == admin.user.username
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == secret
    detail = f"{URL}/{body['id']}"
    for read in (admin.get(detail), admin.get(URL), admin.patch(detail, {}, format="json")):
        assert read.status_code == 200
        assert secret not in read.content.decode() and "secret" not in read.content.decode()


def test_rotate_secret_returns_the_new_one_once(admin):
    created = admin.post(URL, payload(), format="json").json()
    rotated = admin.post(f"{URL}/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != created["secret"]
    assert WebhookEndpoint.objects.get(pk=created["id"]).secret == new
    assert new not in admin.get(f"{URL}/{created['id']}").content.decode()


def test_the_secret_cannot_be_set(admin):
    assert "secret" in errors(admin.post(URL, payload(secret="whsec_mine"), format="json"))
    created = admin.post(URL, payload(), format="json").json()
    assert "secret" in errors(admin.patch(f"{URL}/{created['id']}", {"secret": "whsec_x"}, format="json"))


@pytest.mark.parametrize("client_role", ["viewer", "operator", "editor"])
def test_only_admins_see_or_change_webhooks(request, client_role):
    client = request.getfixturevalue(client_role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, payload(), format="json").status_code == 403
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (payload(event_types=["run.completed", "run.exploded"]), "event_types.1", "Unknown event type 'run.exploded'"),
        (payload(event_types=["nope.*"]), "event_types.0", "Unknown event type"),
        (payload(event_types=[]), "event_types", "at least one"),
        (payload(event_types="run.*"), "event_types", ""),
        (payload(event_types=[3]), "event_types.0", ""),
        (payload(url="not a url"), "url", "valid URL"),
        (payload(url="ftp://127.0.0.1/x"), "url", "http or https"),
        (payload(url="http://127.0.0.1/" + "x" * 2100), "url", ""),
        (payload(workflow_id="00000000-0000-4000-8000-000000000000"), "workflow_id", "No workflow"),
        (payload(workflow_id="nope"), "workflow_id", ""),
        (payload(active="maybe"), "active", ""),
        ({"event_types": ["*"]}, "url", "required"),
    ],
)
def test_bad_input_is_422_with_field_paths(admin, body, field, message):
    found = errors(admin.post(URL, body, format="json"))
    assert field in found, found
    assert message in found[field]
    assert not WebhookEndpoint.objects.exists()


def test_all_problems_come_back_at_once(admin):
    body = payload(url="ftp://127.0.0.1/", event_types=["run.*", "bogus"])
    assert set(errors(admin.post(URL, body, format="json"))) == {"url", "event_types.1"}


def test_every_event_type_and_wildcard_is_accepted(admin):
    types = ["*", "run.*", "step.*", "ping", "run.pending", "run.completed", "step.failed", "step.skipped"]
    types += ["run.paused", "run.resumed"]
    response = admin.post(URL, payload(event_types=[*types, "run.*"]), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["event_types"] == types  # duplicates dropped, order kept


def test_update_replace_and_delete(admin):
    workflow = workflow_with_agents("a")
    created = admin.post(URL, payload(), format="json").json()
    detail = f"{URL}/{created['id']}"
    patched = admin.patch(detail, {"workflow_id": str(workflow.id), "active": False}, format="json").json()
    assert patched["workflow_id"] == str(workflow.id) and patched["active"] is False
    replaced = admin.put(detail, {"url": "http://127.0.0.1:10/x", "event_types": ["*"]}, format="json")
    assert replaced.status_code == 200 and replaced.json()["url"] == "http://127.0.0.1:10/x"
    assert admin.delete(detail).status_code == 204
    assert admin.get(detail).status_code == 404
    assert admin.post(f"{detail}/test").status_code == 404
    assert admin.get(URL).json()["total"] == 0
    assert WebhookEndpoint.objects.get(pk=created["id"]).deleted_at is not None  # soft: history stays
    assert admin.get(f"{URL}/not-a-uuid").status_code == 404


def test_deactivating_or_deleting_fails_what_waits(admin):
    hook = endpoint("http://127.0.0.1:9/hook")
    other = endpoint("http://127.0.0.1:9/other")
    waiting = Delivery.objects.create(endpoint=hook, event_type="ping", payload={}, status=DeliveryStatus.RETRYING)
    untouched = Delivery.objects.create(endpoint=other, event_type="ping", payload={})
    admin.patch(f"{URL}/{hook.id}", {"active": False}, format="json")
    waiting.refresh_from_db()
    assert waiting.status == DeliveryStatus.FAILED and waiting.last_error == "The webhook was deactivated."
    admin.delete(f"{URL}/{other.id}")
    untouched.refresh_from_db()
    assert untouched.status == DeliveryStatus.FAILED and "deleted" in untouched.last_error


def test_list_filters_pagination_and_ordering(admin):
    workflow = workflow_with_agents("a")
    for index in range(25):
        endpoint(f"http://127.0.0.1:9/h{index:02d}", active=index % 5 != 0)
    endpoint("http://127.0.0.1:9/only-this", workflow_id=workflow.id)
    page = admin.get(URL, {"page": 2, "page_size": 10}).json()
    assert (page["total"], page["page"], page["total_pages"], len(page["items"])) == (26, 2, 3, 10)
    assert admin.get(URL, {"active": "false"}).json()["total"] == 5
    assert [i["url"] for i in admin.get(URL, {"workflow_id": str(workflow.id)}).json()["items"]] == [
        "http://127.0.0.1:9/only-this"
    ]
    assert admin.get(URL, {"url": "H0"}).json()["total"] == 10
    urls = [i["url"] for i in admin.get(URL, {"ordering": "url", "page_size": 3}).json()["items"]]
    assert urls == ["http://127.0.0.1:9/h00", "http://127.0.0.1:9/h01", "http://127.0.0.1:9/h02"]
    assert admin.get(URL).json()["items"][0]["url"] == "http://127.0.0.1:9/only-this"  # newest first
    assert "ordering" in errors(admin.get(URL, {"ordering": "secret"}))
    assert "page_size" in errors(admin.get(URL, {"page_size": 101}))


def test_every_change_is_audited_without_the_secret(admin):
    created = admin.post(URL, payload(), format="json").json()
    detail = f"{URL}/{created['id']}"
    admin.patch(detail, {"description": "changed"}, format="json")
    rotated = admin.post(f"{detail}/rotate-secret").json()["secret"]
    delivery = admin.post(f"{detail}/test").json()
    admin.post(f"{detail}/deliveries/{delivery['id']}/redeliver")
    admin.delete(detail)
    events = list(AuditEvent.objects.filter(action__startswith="webhook.").order_by("created_at"))
    assert [e.action for e in events] == [
        "webhook.create",
        "webhook.update",
        "webhook.rotate_secret",
        "webhook.test",
        "webhook.redeliver",
        "webhook.delete",
    ]
    assert events[0].changes["url"] == [None, payload()["url"]] and events[0].user == admin.user.username
    assert events[1].changes == {"description": ["ops", "changed"]}
    assert events[2].changes == {"secret": ["********", "********"]}
    assert all(e.resource_id in (created["id"], delivery["id"]) for e in events)
    dumped = json.dumps([[e.changes, e.input_data] for e in events])
    assert created["secret"] not in dumped and rotated not in dumped and "whsec_" not in dumped


def test_an_update_that_changes_nothing_is_not_audited(admin):
    created = admin.post(URL, payload(), format="json").json()
    admin.put(f"{URL}/{created['id']}", payload(), format="json")
    assert AuditEvent.objects.filter(action="webhook.update").count() == 0


def test_deliveries_list_filters_and_paginates_in_constant_queries(admin, django_assert_max_num_queries):
    hook = endpoint("http://127.0.0.1:9/hook")
    other = endpoint("http://127.0.0.1:9/other")
    run_id = "5b0f2d4c-8f57-4a8e-9c43-0f3c2a9d6b11"
    for index in range(30):
        delivery = Delivery.objects.create(
            endpoint=hook,
            event_type="run.failed" if index % 3 == 0 else "run.completed",
            run_id=run_id if index < 4 else None,
            payload={},
            status=DeliveryStatus.FAILED if index % 2 else DeliveryStatus.SUCCEEDED,
            attempt_count=2,
        )
        for number in (1, 2):
            delivery.attempts.create(number=number, attempted_at=delivery.created_at, status_code=500, duration_ms=3)
    Delivery.objects.create(endpoint=other, event_type="ping", payload={})
    deliveries = f"{URL}/{hook.id}/deliveries"
    with django_assert_max_num_queries(6):  # auth, the webhook, the count, the page, its attempts
        page = admin.get(deliveries, {"page_size": 25}).json()
    assert page["total"] == 30 and len(page["items"]) == 25
    first = page["items"][0]
    assert [a["number"] for a in first["attempts"]] == [1, 2] and first["attempt_count"] == 2
    assert admin.get(deliveries, {"status": "FAILED"}).json()["total"] == 15
    assert admin.get(deliveries, {"event_type": "run.failed"}).json()["total"] == 10
    assert admin.get(deliveries, {"event_type": "run.failed,run.completed"}).json()["total"] == 30
    assert admin.get(deliveries, {"run_id": run_id}).json()["total"] == 4
    assert "status" in errors(admin.get(deliveries, {"status": "LOST"}))
    assert admin.get(f"{URL}/{other.id}/deliveries").json()["total"] == 1
    assert admin.get(f"{URL}/00000000-0000-4000-8000-000000000000/deliveries").status_code == 404


def test_redeliver_needs_a_delivery_of_this_webhook(admin):
    hook = endpoint("http://127.0.0.1:9/hook")
    other = endpoint("http://127.0.0.1:9/other")
    delivery = Delivery.objects.create(endpoint=other, event_type="ping", payload={}, status=DeliveryStatus.FAILED)
    assert admin.post(f"{URL}/{hook.id}/deliveries/{delivery.id}/redeliver").status_code == 404
    assert admin.post(f"{URL}/{hook.id}/deliveries/nope/redeliver").status_code == 404
    sending = Delivery.objects.create(endpoint=hook, event_type="run.failed", status=DeliveryStatus.SENDING)
    assert admin.post(f"{URL}/{hook.id}/deliveries/{sending.id}/redeliver").status_code == 409
    done = Delivery.objects.create(endpoint=hook, event_type="run.failed", status=DeliveryStatus.FAILED)
    admin.patch(f"{URL}/{hook.id}", {"active": False}, format="json")
    response = admin.post(f"{URL}/{hook.id}/deliveries/{done.id}/redeliver")
    assert response.status_code == 409 and "inactive" in response.json()["detail"]


def test_admin_pages(admin):
    get_user_model().objects.create_superuser("boss", "", "pw-123456-long")
    staff = Client()
    assert staff.login(username="boss", password="pw-123456-long")
    response = staff.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"url": "http://127.0.0.1:9/admin", "description": "", "event_types": '["run.*"]', "active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    hook = WebhookEndpoint.objects.get(url="http://127.0.0.1:9/admin")
    assert hook.secret in response.content.decode()  # in the message, once
    assert AuditEvent.objects.filter(action="webhook.create", user="boss").exists()
    page = staff.get(f"/admin/webhooks/webhookendpoint/{hook.id}/change/").content.decode()
    assert hook.secret not in page
    delivery = Delivery.objects.create(endpoint=hook, event_type="ping", payload={}, status=DeliveryStatus.FAILED)
    delivery.attempts.create(number=1, attempted_at=delivery.created_at, status_code=500, duration_ms=3)
    pages = ["/admin/webhooks/webhookendpoint/", "/admin/webhooks/delivery/"]
    for url in [*pages, f"/admin/webhooks/delivery/{delivery.id}/change/"]:
        assert staff.get(url).status_code == 200, url
    bad = staff.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"url": "http://127.0.0.1:9/b", "event_types": '["run.nope"]', "active": "on"},
        follow=True,
    )
    assert "Unknown event type" in bad.content.decode() and not WebhookEndpoint.objects.filter(url__endswith="/b")
    staff.post(
        "/admin/webhooks/delivery/",
        {"action": "redeliver", "_selected_action": [str(delivery.id)]},
        follow=True,
    )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    # Staff below the admin role do not see webhooks at all.
    editor_user = admin.user.__class__.objects.create_user("ed", password="pw-123456-long", is_staff=True)
    editor_client = Client()
    editor_client.force_login(editor_user)
    assert editor_client.get("/admin/webhooks/webhookendpoint/").status_code == 403
