"""Every registered admin's list page: it answers 200, shows the platform's badges, and its query count
does not grow with its rows (3 rows and 30 rows cost the same queries: no N+1). A model registered
without a maker below fails here, so a new admin page gets its check too."""

import itertools
import uuid
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from core.models import ApiKey, OutboxMessage
from core.roles import Role
from core.services import api_key_create
from runs.models import Event, IdempotencyKey, Run, StepExecution
from schedules.models import Schedule, ScheduleFire
from tests.factories import AgentFactory, UserFactory
from tests.runs.helpers import workflow_with_agents
from webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint
from workflows.models import Workflow

pytestmark = pytest.mark.django_db
counter = itertools.count()


def workflow():
    return Workflow.objects.first() or workflow_with_agents("lister", name="listed")


def run(status="FAILED"):
    flow = workflow()
    now = timezone.now()
    return Run.objects.create(
        workflow=flow,
        workflow_name=flow.name,
        workflow_version=1,
        plan=flow.definition,
        status=status,
        started_at=now - timedelta(seconds=3),
        completed_at=now,
        triggered_by=UserFactory().username,
    )


def step(_):
    return StepExecution.objects.create(run=run(), step_id="s1", agent_name="lister", status="FAILED", duration_ms=1500)


def event(_):
    failed = run()
    return Event.objects.create(type="run.failed", run=failed, workflow_id=failed.workflow_id, data={})


def endpoint():
    return WebhookEndpoint.objects.create(
        url=f"https://hooks.example.com/{next(counter)}", secret="whsec_x", event_types=["*"]
    )


def delivery(_):
    made = Delivery.objects.create(endpoint=endpoint(), event_type="run.failed", status="FAILED")
    DeliveryAttempt.objects.create(delivery=made, number=1, attempted_at=timezone.now(), duration_ms=20)
    return made


def schedule(_):
    return Schedule.objects.create(name=f"sched-{next(counter)}", workflow=workflow(), cron="* * * * *")


MAKERS = {
    "agents.agent": lambda i: AgentFactory(),
    "workflows.workflow": lambda i: workflow_with_agents(f"a{next(counter)}", name=f"w{next(counter)}"),
    "runs.run": lambda i: run(),
    "runs.stepexecution": step,
    "runs.event": event,
    "runs.idempotencykey": lambda i: IdempotencyKey.objects.create(
        user=UserFactory(), key=str(uuid.uuid4()), request_hash="0" * 64, run=run()
    ),
    "schedules.schedule": schedule,
    "schedules.schedulefire": lambda i: ScheduleFire.objects.create(
        schedule=schedule(i), due_at=timezone.now(), run=run()
    ),
    "webhooks.webhookendpoint": lambda i: endpoint(),
    "webhooks.delivery": delivery,
    "core.apikey": lambda i: api_key_create(
        user=UserFactory(), role=Role.VIEWER, name=f"k{i}", created_by=UserFactory()
    )[0],
    "core.outboxmessage": lambda i: OutboxMessage.objects.create(
        topic="runs", key=str(i), payload={}, next_attempt_at=timezone.now()
    ),
    "auth.user": lambda i: UserFactory(),
    "auth.group": lambda i: Group.objects.create(name=f"group-{next(counter)}"),
    "audit.auditevent": lambda i: AuditEvent.objects.create(
        user="boss", action="agent.update", resource_type="agent", resource_id=str(uuid.uuid4())
    ),
}

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label_lower)


def list_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_every_registered_admin_has_a_maker():
    assert {model._meta.label_lower for model in REGISTERED} <= set(MAKERS)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label_lower)
def test_list_page_queries_do_not_grow_with_rows(staff, model):
    make = MAKERS[model._meta.label_lower]

    def page_queries(rows: int) -> int:
        while model._default_manager.count() < rows:
            make(model._default_manager.count())
        with CaptureQueriesContext(connection) as queries:
            response = staff.get(list_url(model))
        assert response.status_code == 200
        shown = response.context["cl"].result_count
        assert shown >= rows, f"{model._meta.label}: {shown} rows shown, {rows} made"
        return len(queries)

    few, many = page_queries(3), page_queries(30)
    assert many == few, f"{model._meta.label}: {few} queries for 3 rows, {many} for 30"


@pytest.mark.parametrize(
    ("model", "shown"),
    [(Run, "wf-badge wf-tone-danger"), (StepExecution, "1.5 s"), (AuditEvent, "wf-time"), (ApiKey, "wf-tone-success")],
)
def test_lists_show_badges_times_and_durations(staff, model, shown):
    MAKERS[model._meta.label_lower](0)
    html = staff.get(list_url(model)).content.decode()
    assert shown in html


def test_a_badge_column_still_sorts_by_its_field(staff):
    run("COMPLETED"), run("FAILED")
    column = staff.get(list_url(Run)).context["cl"].list_display.index("status_shown")  # "o" counts the checkbox
    for order, expected in ((str(column), ["COMPLETED", "FAILED"]), (f"-{column}", ["FAILED", "COMPLETED"])):
        page = staff.get(list_url(Run), {"o": order})
        assert [row.status for row in page.context["cl"].result_list] == expected


SUBMITS = ('name="_save"', 'name="_continue"', 'name="_addanother"')


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label_lower)
def test_a_read_only_page_has_no_save_or_delete(staff, model):
    """What the admin cannot change shows no button promising it (the theme draws its own submit line)."""
    obj = MAKERS[model._meta.label_lower](0)
    opts = model._meta
    page = staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert page.status_code == 200
    html, context = page.content.decode(), page.context
    if not context["has_change_permission"]:
        assert not [button for button in SUBMITS if button in html], opts.label
    if not context["has_delete_permission"]:
        delete_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk])
        assert delete_url not in html, opts.label


def test_the_save_marker_is_the_themes_own(staff):
    """The check above looks for these names: an editable page does show them."""
    agent = AgentFactory()
    html = staff.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()
    assert 'name="_save"' in html and reverse("admin:agents_agent_delete", args=[agent.pk]) in html
