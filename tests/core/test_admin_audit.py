"""Every write through the admin leaves an audit row, as the API's do; a model the admin does not write is
read-only there. The test walks every registered ModelAdmin and every admin action, so a model or an
action added later fails here until it is audited (or read-only) and has a recipe below."""

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from agents.models import Agent
from audit.models import AuditEvent
from core.models import ApiKey
from core.roles import Role
from core.services import api_key_create
from runs.choices import RunStatus
from runs.models import IdempotencyKey, Run, StepExecution
from runs.services import run_execute
from schedules.models import Schedule, ScheduleFire
from tests.factories import AgentFactory, UserFactory
from tests.runs.helpers import workflow_with_agents
from tests.schedules.helpers import SCHEDULED_WORKFLOW_ID, schedule_make
from tests.support.admin_forms import form_data
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_create, webhook_test
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

User = get_user_model()
NUMBERS = itertools.count()


@dataclass
class Recipe:
    """How the test makes a row of a writable model and what it types into its add and change forms."""

    make: Callable
    add: dict | None = None
    change: dict | None = None
    added_status: int = 302  # what the add form's POST answers (a redirect, but for a page showing a secret)


RECIPES = {
    Agent: Recipe(
        make=lambda: AgentFactory(),
        add={"name": "added-agent", "url": "http://127.0.0.1:1/", "timeout_ms": "6000"},
        change={"timeout_ms": "7000"},
    ),
    # Deleted only; its history's revert is walked below.
    Workflow: Recipe(make=lambda: workflow_with_agents(f"walker-{next(NUMBERS)}", name=f"walked-{next(NUMBERS)}")),
    WebhookEndpoint: Recipe(
        make=lambda: webhook_create(user=None, data={"url": "http://127.0.0.1:1/in", "event_types": ["*"]}),
        add={"url": "http://127.0.0.1:1/added", "event_types": '["run.*"]', "active": "on"},
        change={"description": "changed in the admin"},
    ),
    Schedule: Recipe(
        make=schedule_make,
        add={"name": "added-schedule", "workflow": SCHEDULED_WORKFLOW_ID, "cron": "0 * * * *", "timezone": "UTC"},
        change={"cron": "0 3 * * *"},
    ),
    User: Recipe(
        make=lambda: UserFactory(),
        add={
            "username": "added-user",
            "usable_password": "true",
            "password1": "Pw-add-1234",
            "password2": "Pw-add-1234",
        },
        change={"first_name": "Changed"},
    ),
    # Created on a page of its own that shows the raw key in the POST's answer itself (core/admin_keys.py).
    ApiKey: Recipe(
        make=lambda: api_key_create(user=UserFactory(), role=Role.VIEWER, name=f"walked-{next(NUMBERS)}")[0],
        add={"name": "added-key", "role": "viewer"},
        added_status=200,
    ),
    Group: Recipe(
        make=lambda: Group.objects.create(name=f"walked-group-{next(NUMBERS)}"),
        add={"name": "added-group"},
        change={"name": "renamed"},
    ),
}

# Every admin action and the audit action it must leave.
ACTIONS = {
    "revoke_keys": "api_key.revoke",
    "rotate_secrets": "webhook.rotate_secret",
    "send_pings": "webhook.test",
    "redeliver": "webhook.redeliver",
    "cancel_runs": "run.cancel",
    "retry_runs": "run.retry",
}


@pytest.fixture
def boss():
    return User.objects.create_superuser("boss", "", "pw-123456-long")


@pytest.fixture
def staff(boss):
    client = Client()
    client.force_login(boss)
    return client


@pytest.fixture
def world():
    """A row of every registered model, so that each admin is tried on one."""
    run = run_execute(workflow=workflow_with_agents("runner", name="ran"), input_data={"text": "x"}, user=None)
    StepExecution.objects.create(run=run, step_id="s1", agent_name="runner", status="RUNNING", correlation_id="c-1")
    IdempotencyKey.objects.create(user=UserFactory(), key="walked", request_hash="0" * 64, run=run)
    webhook_test(endpoint=RECIPES[WebhookEndpoint].make(), user=None)
    api_key_create(user=UserFactory(), role=Role.VIEWER, name="walked key")
    for recipe in RECIPES.values():
        recipe.make()
    ScheduleFire.objects.create(schedule=RECIPES[Schedule].make(), due_at=run.created_at, run=run)


def snapshot(model) -> list[dict]:
    return list(model._default_manager.order_by("pk").values())


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def writes(model_admin, request, obj) -> set[str]:
    """What the admin lets a superuser write of this model."""
    found = set()
    if model_admin.has_add_permission(request):
        found.add("add")
    editable = bool(model_admin.get_form(request, obj, change=True).base_fields) or any(
        inline.has_add_permission(request, obj)
        or (inline.can_delete and inline.has_delete_permission(request, obj))
        or set(inline.get_formset(request, obj).form.base_fields) - {"id", inline.fk_name or ""}
        for inline in model_admin.get_inline_instances(request, obj)
    )
    if editable and model_admin.has_change_permission(request, obj):
        found.add("change")
    if model_admin.has_delete_permission(request, obj):
        found.add("delete")
    return found


def errors(response) -> list[str]:
    """The form errors of a page that did not save, to say why."""
    return re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)


def post_form(staff, url: str, form_id: str, typed: dict):
    page = staff.get(url)
    assert page.status_code == 200, url
    data = {**form_data(page.content.decode(), form_id), **typed}
    return staff.post(url, data)


def audit_ids() -> set:
    return set(AuditEvent.objects.values_list("id", flat=True))


def assert_audited(model, before: set, *, write: str, obj_id=None):
    new = AuditEvent.objects.exclude(id__in=before)
    label = f"{model._meta.label} {write}"
    assert new.exists(), f"{label} through the admin left no audit row"
    if obj_id is not None:
        assert new.filter(resource_id=str(obj_id)).exists(), f"{label}: no audit row for {obj_id}"


def test_every_admin_write_is_audited_or_refused(staff, boss, world):
    request = RequestFactory().get("/admin/")
    request.user = boss
    for model, model_admin in admin.site._registry.items():
        obj = model_admin.get_queryset(request).order_by("pk").first()
        assert obj is not None, f"the world fixture makes no {model._meta.label}"
        allowed = writes(model_admin, request, obj)
        form_id = f"{model._meta.model_name}_form"
        if not allowed:
            before = snapshot(model)
            assert staff.get(admin_url(model, "add")).status_code == 403, model
            assert staff.post(admin_url(model, "change", obj.pk), {}).status_code == 403, model
            assert staff.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403, model
            assert snapshot(model) == before, f"{model._meta.label} changed through a read-only admin"
            continue
        recipe = RECIPES.get(model)
        assert recipe, f"{model._meta.label} is writable in the admin ({allowed}): give it a recipe here"
        if "change" in allowed:
            assert recipe.change, f"{model._meta.label} can be changed in the admin: give its recipe a change"
            seen = audit_ids()
            response = post_form(staff, admin_url(model, "change", obj.pk), form_id, recipe.change)
            assert response.status_code == 302, (model, errors(response))
            assert_audited(model, seen, write="change", obj_id=obj.pk)
        else:  # saving the page as shown writes nothing
            before = snapshot(model)
            post_form(staff, admin_url(model, "change", obj.pk), form_id, {})
            assert snapshot(model) == before, f"{model._meta.label}: a read-only change page wrote"
        if "add" in allowed:
            assert recipe.add, f"{model._meta.label} can be added in the admin: give its recipe an add"
            seen = audit_ids()
            response = post_form(staff, admin_url(model, "add"), form_id, recipe.add)
            assert response.status_code == recipe.added_status, (model, errors(response))
            assert_audited(model, seen, write="add")
        if "delete" in allowed:
            seen = audit_ids()
            victim = recipe.make()
            response = staff.post(admin_url(model, "delete", victim.pk), {"post": "yes"})
            assert response.status_code == 302, (model, errors(response))
            assert_audited(model, seen, write="delete", obj_id=victim.pk)
            seen = audit_ids()
            victim = recipe.make()
            selected = {"action": "delete_selected", "_selected_action": [victim.pk], "post": "yes"}
            staff.post(admin_url(model, "changelist"), selected)
            assert_audited(model, seen, write="delete_selected", obj_id=victim.pk)


def test_every_admin_action_is_audited(staff, boss, world):
    request = RequestFactory().get("/admin/")
    request.user = boss
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.get_actions(request):
            if name == "delete_selected":  # walked with the deletes above
                continue
            assert name in ACTIONS, f"{model._meta.label}'s admin action {name!r}: audit it and add it to ACTIONS"
            if name == "retry_runs":
                Run.objects.update(status=RunStatus.FAILED)
            selected = [obj.pk for obj in model_admin.get_queryset(request)]
            assert selected, f"the world fixture makes no {model._meta.label}"
            seen = audit_ids()
            staff.post(admin_url(model, "changelist"), {"action": name, "_selected_action": selected})
            actions = set(AuditEvent.objects.exclude(id__in=seen).values_list("action", flat=True))
            assert ACTIONS[name] in actions, f"{model._meta.label}'s admin action {name!r} left no audit row"


def test_every_history_revert_is_audited_or_changes_nothing(staff, boss, world):
    """django-simple-history's Revert saves an old state through the admin: it must go through the
    services too (or not write at all)."""
    request = RequestFactory().get("/admin/")
    request.user = boss
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, SimpleHistoryAdmin):
            continue
        obj = model_admin.get_queryset(request).order_by("pk").first()
        recipe = RECIPES.get(model)
        if recipe and recipe.change:  # a second state, so that reverting to the first would write
            post_form(staff, admin_url(model, "change", obj.pk), f"{model._meta.model_name}_form", recipe.change)
        oldest = obj.history.order_by("history_id").first()
        before, seen = snapshot(model), audit_ids()
        url = admin_url(model, "simple_history", obj.pk, oldest.history_id)
        page = staff.get(url)
        assert page.status_code == 200, url
        staff.post(url, form_data(page.content.decode(), f"historical{model._meta.model_name}_form"))
        audited = AuditEvent.objects.exclude(id__in=seen).exists()
        assert snapshot(model) == before or audited, f"{model._meta.label} reverted without an audit row"


def test_user_writes_are_audited_with_their_changes_and_never_a_password(staff):
    add = post_form(
        staff,
        "/admin/auth/user/add/",
        "user_form",
        {"username": "newcomer", "usable_password": "true", "password1": "Pw-new-12345", "password2": "Pw-new-12345"},
    )
    assert add.status_code == 302, errors(add)
    user = User.objects.get(username="newcomer")
    created = AuditEvent.objects.get(action="user.create")
    assert (created.user, created.resource_id) == ("boss", str(user.pk))
    assert created.changes["username"] == [None, "newcomer"] and created.changes["password1"] == [None, "********"]

    group = Group.objects.get_or_create(name="viewer")[0]
    url = f"/admin/auth/user/{user.pk}/change/"
    changed = post_form(staff, url, "user_form", {"first_name": "New", "groups": [str(group.pk)]})
    assert changed.status_code == 302, errors(changed)
    updated = AuditEvent.objects.get(action="user.update")
    assert updated.changes == {"first_name": ["", "New"], "groups": [[], ["viewer"]]}

    password_url = f"/admin/auth/user/{user.pk}/password/"
    response = post_form(staff, password_url, "user_form", {"password1": "Pw-other-1234", "password2": "Pw-other-1234"})
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="user.password_change").changes == {"password": ["********", "********"]}
    mismatch = post_form(staff, password_url, "user_form", {"password1": "Pw-other-1234", "password2": "nope"})
    assert mismatch.status_code == 200
    assert AuditEvent.objects.filter(action="user.password_change").count() == 1
    for event in AuditEvent.objects.all():
        assert "Pw-" not in str(event.changes)
