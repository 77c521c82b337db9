"""Runs in the admin: read-only pages with steps and logs; cancel and retry through the services."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client

from audit.models import AuditEvent
from runs.choices import RunStatus
from runs.models import Run, StepExecution
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents

pytestmark = pytest.mark.django_db


def login(username: str, *, superuser=False, group=None) -> Client:
    User = get_user_model()
    if superuser:
        User.objects.create_superuser(username, "", "pw-123456-long")
    else:
        user = User.objects.create_user(username, "", "pw-123456-long", is_staff=True)
        user.groups.add(Group.objects.get_or_create(name=group)[0])
        user.user_permissions.add(*Permission.objects.filter(codename__in=["view_run"]))
    client = Client()
    assert client.login(username=username, password="pw-123456-long")
    return client


def test_run_pages_load_and_are_read_only():
    staff = login("boss", superuser=True)
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    StepExecution.objects.create(run=run, step_id="s1", agent_name="a", status="RUNNING", correlation_id="corr-1")
    for url in [
        "/admin/runs/run/",
        f"/admin/runs/run/{run.id}/change/",
        "/admin/runs/stepexecution/",
        "/admin/core/outboxmessage/",
        "/admin/runs/run/?status__exact=PENDING&q=chain",
        "/admin/runs/event/",
        f"/admin/runs/event/?q={run.id}&type__exact=run.pending",
    ]:
        response = staff.get(url)
        assert response.status_code == 200, url
    page = staff.get(f"/admin/runs/run/{run.id}/change/").content.decode()
    assert "s1" in page and "Run created" in page
    assert staff.post(f"/admin/runs/run/{run.id}/change/", {}).status_code == 403
    assert staff.get("/admin/runs/run/add/").status_code == 403
    assert "run.pending" in staff.get(f"/admin/runs/event/?q={run.id}").content.decode()
    assert staff.get("/admin/runs/event/add/").status_code == 403


def test_cancel_and_retry_actions_use_the_services():
    staff = login("boss", superuser=True)
    running = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    done = run_execute(workflow=workflow_with_agents("b", name="other"), input_data={"text": "x"}, user=None)
    Run.objects.filter(pk=done.pk).update(status=RunStatus.COMPLETED)
    response = staff.post(
        "/admin/runs/run/", {"action": "cancel_runs", "_selected_action": [running.id, done.id]}, follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("Cancel: 1 run(s)." in m for m in messages)
    assert any("COMPLETED" in m for m in messages)
    assert Run.objects.get(pk=running.pk).status == RunStatus.CANCELLED
    assert AuditEvent.objects.get(action="run.cancel").user == "boss"

    staff.post("/admin/runs/run/", {"action": "retry_runs", "_selected_action": [running.id]})
    retried = Run.objects.get(pk=running.pk)
    assert (retried.status, retried.attempt) == (RunStatus.PENDING, 2)


def test_a_viewer_in_the_admin_cannot_cancel():
    viewer = login("watcher", group="viewer")
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    response = viewer.post("/admin/runs/run/", {"action": "cancel_runs", "_selected_action": [run.id]}, follow=True)
    assert Run.objects.get(pk=run.pk).status == RunStatus.PENDING
    assert response.status_code in (200, 403)


def test_a_run_page_draws_every_scope_in_its_timeline_and_links_the_steps_list():
    from django.contrib.auth import get_user_model
    from django.test import Client

    from runs.services import run_execute
    from tests.runs.test_blocks import doubling, drive, loop_workflow

    run = run_execute(workflow=loop_workflow(), input_data={"items": [{"v": n} for n in range(30)]}, user=None)
    drive(run, doubling)
    get_user_model().objects.create_superuser("ops", "", "pw-123456-long")
    client = Client()
    client.login(username="ops", password="pw-123456-long")
    page = client.get(f"/admin/runs/run/{run.id}/change/").content.decode()
    # The loop, its 30 iterations, their 2 body steps each, the step after it: a timeline row each.
    assert page.count('class="wf-tl-line wf-tl-row') == 1 + 30 + 60 + 1
    assert f"/admin/runs/stepexecution/?run__id__exact={run.id}" in page
    listing = client.get(f"/admin/runs/stepexecution/?run__id__exact={run.id}&step_type__exact=iteration")
    assert listing.status_code == 200 and listing.context_data["cl"].result_count == 30
