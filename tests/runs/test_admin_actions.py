"""The buttons on a run's admin page: pause, resume, cancel, retry and rerun, through the services
(audited as the API's), for operators only."""

import pytest

from audit.models import AuditEvent
from runs.choices import RunStatus
from runs.models import Run
from runs.services import run_execute
from tests.runs.helpers import workflow_with_agents
from tests.runs.test_admin import login
from tests.runs.test_executor import fresh, result, start, tasks

pytestmark = pytest.mark.django_db


def page(client, run) -> str:
    response = client.get(f"/admin/runs/run/{run.id}/change/")
    assert response.status_code == 200
    return response.content.decode()


def act(client, run, name, data=None):
    return client.post(f"/admin/runs/run/{run.id}/act/{name}/", data or {}, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_pause_resume_and_cancel_from_the_run_page():
    staff = login("boss", superuser=True)
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    shown = page(staff, run)
    assert 'name="_pause"' in shown and 'name="_cancel"' in shown and 'name="_resume"' not in shown

    response = act(staff, run, "pause")
    assert "Run paused." in messages_of(response) and fresh(run).status == RunStatus.PAUSED
    assert 'name="_resume"' in page(staff, run) and 'name="_pause"' not in page(staff, run)
    assert tasks(result(task, {"text": "y"})) == []

    response = act(staff, run, "resume")
    assert "Run resumed." in messages_of(response) and fresh(run).status == RunStatus.RUNNING
    [task2] = tasks(start(run))
    assert task2["step_id"] == "s2"

    response = act(staff, run, "resume")  # not paused: the service's 409 as a message
    assert any("Only PAUSED runs can be resumed" in m for m in messages_of(response))
    act(staff, run, "cancel", {"reason": "enough"})
    run = fresh(run)
    assert run.status == RunStatus.CANCELLED and run.cancel_reason == "enough"
    actions = set(AuditEvent.objects.filter(resource_id=str(run.id), user="boss").values_list("action", flat=True))
    assert {"run.pause", "run.resume", "run.cancel"} <= actions


def test_retry_and_rerun_from_the_run_page():
    staff = login("boss", superuser=True)
    run = run_execute(workflow=workflow_with_agents("a", "b"), input_data={"text": "x"}, user=None)
    [task] = tasks(start(run))
    [task2] = tasks(result(task, {"text": "y"}))
    result(task2, error="boom")
    assert fresh(run).status == RunStatus.FAILED
    shown = page(staff, run)
    assert 'name="_retry"' in shown and 'name="_rerun"' in shown and 'name="_pause"' not in shown

    act(staff, run, "retry")
    assert (fresh(run).status, fresh(run).attempt) == (RunStatus.PENDING, 2)
    assert AuditEvent.objects.filter(action="run.retry", user="boss").exists()

    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    response = act(staff, run, "rerun", {"from_step": "s2", "input_data": '{"text": "new"}'})
    new = Run.objects.get(rerun_of=run)
    assert response.redirect_chain[-1][0] == f"/admin/runs/run/{new.id}/change/"
    assert new.status == RunStatus.PENDING and new.input_data == {"text": "new"}
    assert AuditEvent.objects.filter(user="boss", resource_id=str(new.id)).exists()

    response = act(staff, run, "rerun", {"from_step": "s2", "input_data": "{not json"})
    assert any("not JSON" in m for m in messages_of(response))
    assert Run.objects.filter(rerun_of=run).count() == 1


def test_a_viewer_sees_no_buttons_and_cannot_post_them():
    viewer = login("watcher", group="viewer")
    run = run_execute(workflow=workflow_with_agents("a"), input_data={"text": "x"}, user=None)
    assert "Run actions" not in page(viewer, run)
    assert viewer.post(f"/admin/runs/run/{run.id}/act/pause/").status_code == 403
    assert viewer.get(f"/admin/runs/run/{run.id}/act/pause/").status_code in (403, 405)
    assert fresh(run).status == RunStatus.PENDING
    operator = login("ops", group="operator")
    assert 'name="_pause"' in page(operator, run)
    act(operator, run, "pause")
    assert fresh(run).status == RunStatus.PAUSED
