"""The /schedules resource through HTTP: create, validation with field paths, list, update, delete, audit."""

import pytest

from audit.models import AuditEvent
from schedules.models import Schedule
from workflows.services import workflow_delete

pytestmark = pytest.mark.django_db


def body(workflow, **extra):
    return {
        "name": "every-five",
        "workflow_id": str(workflow.pk),
        "cron": "*/5 * * * *",
        "input_data": {"text": "hi"},
        **extra,
    }


def fields(response):
    assert response.status_code == 422, response.content
    return {error["field"] for error in response.json()["errors"]}


def test_create_plans_the_first_due_time_and_is_audited(editor, workflow, clock):
    response = editor.post("/api/v1/schedules", body(workflow), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert response["Location"] == f"/api/v1/schedules/{data['id']}"
    assert data["timezone"] == "UTC" and data["active"] is True
    assert data["next_run_at"] == "2026-01-05T12:05:00Z"  # the clock is at 12:00 sharp
    assert data["last_run_id"] is None and data["last_error"] == "" and data["created_by"] == "editor-user"
    event = AuditEvent.objects.get(action="schedule.create")
    assert event.resource_id == data["id"] and event.changes["cron"] == [None, "*/5 * * * *"]


def test_time_zone_shifts_the_due_time(editor, workflow, clock):
    response = editor.post(
        "/api/v1/schedules", body(workflow, cron="0 14 * * *", timezone="Europe/Paris"), format="json"
    )
    assert response.json()["next_run_at"] == "2026-01-05T13:00:00Z"  # 14:00 in Paris, winter time


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "0 0 * * * *"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"input_data": {"text": 5}}, "input_data.text"),
        ({"input_data": {}}, "input_data"),
        ({"workflow_id": "00000000-0000-4000-8000-0000000000ff"}, "workflow_id"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(editor, workflow, change, field):
    assert field in fields(editor.post("/api/v1/schedules", body(workflow, **change), format="json"))
    assert not Schedule.objects.exists()


def test_all_problems_come_back_at_once(editor, workflow):
    response = editor.post("/api/v1/schedules", body(workflow, cron="61 * * * *", timezone="Nowhere"), format="json")
    assert fields(response) == {"cron", "timezone"}


def test_duplicate_name_is_a_409(editor, workflow):
    assert editor.post("/api/v1/schedules", body(workflow), format="json").status_code == 201
    assert editor.post("/api/v1/schedules", body(workflow), format="json").status_code == 409


def test_inactive_workflow_cannot_get_an_active_schedule(editor, workflow):
    workflow.status = "inactive"
    workflow.save()
    assert editor.post("/api/v1/schedules", body(workflow), format="json").status_code == 409
    response = editor.post("/api/v1/schedules", body(workflow, active=False), format="json")
    assert response.status_code == 201 and response.json()["next_run_at"] is None


def test_deleted_workflow_is_a_422(editor, workflow):
    workflow_delete(workflow=workflow, user=None)
    assert fields(editor.post("/api/v1/schedules", body(workflow), format="json")) == {"workflow_id"}


def test_list_paginates_and_filters(editor, viewer, workflow):
    for index in range(3):
        editor.post("/api/v1/schedules", body(workflow, name=f"s{index}", active=index != 1), format="json")
    page = viewer.get("/api/v1/schedules?page_size=2").json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert {item["name"] for item in viewer.get("/api/v1/schedules?active=false").json()["items"]} == {"s1"}
    assert viewer.get("/api/v1/schedules?name=S2").json()["total"] == 1
    assert viewer.get(f"/api/v1/schedules?workflow_id={workflow.pk}").json()["total"] == 3
    names = [item["name"] for item in viewer.get("/api/v1/schedules?ordering=name").json()["items"]]
    assert names == ["s0", "s1", "s2"]
    assert viewer.get("/api/v1/schedules?workflow_id=nope").status_code == 422


def test_patch_replans_and_is_audited(editor, workflow, clock):
    schedule_id = editor.post("/api/v1/schedules", body(workflow), format="json").json()["id"]
    response = editor.patch(f"/api/v1/schedules/{schedule_id}", {"cron": "0 18 * * *"}, format="json")
    assert response.status_code == 200 and response.json()["next_run_at"] == "2026-01-05T18:00:00Z"
    assert AuditEvent.objects.get(action="schedule.update").changes == {"cron": ["*/5 * * * *", "0 18 * * *"]}
    assert "cron" in fields(editor.patch(f"/api/v1/schedules/{schedule_id}", {"cron": "61 * * * *"}, format="json"))
    paused = editor.patch(f"/api/v1/schedules/{schedule_id}", {"active": False}, format="json").json()
    assert paused["active"] is False and paused["next_run_at"] is None


def test_put_replaces(editor, workflow):
    schedule_id = editor.post("/api/v1/schedules", body(workflow), format="json").json()["id"]
    response = editor.put(f"/api/v1/schedules/{schedule_id}", body(workflow, name="renamed"), format="json")
    assert response.status_code == 200 and response.json()["name"] == "renamed"
    response = editor.put(f"/api/v1/schedules/{schedule_id}", {"name": "only-a-name"}, format="json")
    assert {"workflow_id", "cron"} <= fields(response)


def test_delete_is_soft_and_audited(editor, workflow):
    schedule_id = editor.post("/api/v1/schedules", body(workflow), format="json").json()["id"]
    assert editor.delete(f"/api/v1/schedules/{schedule_id}").status_code == 204
    assert editor.get(f"/api/v1/schedules/{schedule_id}").status_code == 404
    assert Schedule.objects.get(pk=schedule_id).deleted_at is not None
    assert AuditEvent.objects.filter(action="schedule.delete", resource_id=schedule_id).exists()
    # The name is free again.
    assert editor.post("/api/v1/schedules", body(workflow), format="json").status_code == 201


def test_viewer_reads_but_cannot_write(viewer, editor, workflow):
    schedule_id = editor.post("/api/v1/schedules", body(workflow), format="json").json()["id"]
    assert viewer.get(f"/api/v1/schedules/{schedule_id}").status_code == 200
    assert viewer.post("/api/v1/schedules", body(workflow, name="x"), format="json").status_code == 403
