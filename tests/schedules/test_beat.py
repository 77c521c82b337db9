"""The beat task: runs start once per due time, in the schedule's time zone, across DST changes,
with one catch-up run after downtime, and a paused schedule when its workflow cannot run."""

from datetime import UTC, datetime, timedelta

import pytest

from audit.models import AuditEvent
from runs.models import Run
from schedules.beat import schedules_tick
from schedules.models import ScheduleFire
from schedules.services import schedule_create, schedule_update
from workflows.services import workflow_delete, workflow_update

pytestmark = pytest.mark.django_db


def make(workflow, cron="*/5 * * * *", tz="UTC", name="s"):
    return schedule_create(
        user=None,
        data={"name": name, "workflow_id": workflow.pk, "cron": cron, "timezone": tz, "input_data": {"text": "x"}},
    )


def run_through(clock, until: datetime, step=timedelta(minutes=1)) -> None:
    """The beat ticking every `step` from the clock's time to `until`."""
    while clock.now < until:
        clock.now += step
        schedules_tick()


def local_run_times(schedule, tz):
    from zoneinfo import ZoneInfo

    fires = ScheduleFire.objects.filter(schedule=schedule).order_by("due_at")
    return [fire.due_at.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M%z") for fire in fires]


def test_due_schedule_starts_one_run(workflow, clock):
    schedule = make(workflow)
    clock.now = datetime(2026, 1, 5, 12, 5, 0, 300_000, tzinfo=UTC)
    assert schedules_tick() == 1
    run = Run.objects.get()
    assert run.triggered_by == "schedule:s" and run.input_data == {"text": "x"} and run.workflow_id == workflow.pk
    schedule.refresh_from_db()
    assert schedule.last_run_id == run.pk and schedule.last_run_at == clock.now
    assert schedule.next_run_at == datetime(2026, 1, 5, 12, 10, tzinfo=UTC)
    assert schedules_tick() == 0  # the same due time again: nothing
    assert Run.objects.count() == 1


def test_not_due_yet_starts_nothing(workflow, clock):
    make(workflow)
    clock.now = datetime(2026, 1, 5, 12, 4, 59, tzinfo=UTC)
    assert schedules_tick() == 0 and not Run.objects.exists()


def test_every_due_time_once_over_an_hour(workflow, clock):
    schedule = make(workflow)
    run_through(clock, clock.now + timedelta(hours=1), step=timedelta(seconds=20))
    assert Run.objects.count() == 12 == ScheduleFire.objects.filter(schedule=schedule).count()


def test_missed_due_times_make_one_catch_up_run(workflow, clock):
    schedule = make(workflow, cron="* * * * *")
    clock.now += timedelta(hours=2, seconds=30)  # everything was down for two hours
    schedules_tick()
    assert Run.objects.count() == 1
    fire = ScheduleFire.objects.get()
    assert fire.due_at == datetime(2026, 1, 5, 12, 1, tzinfo=UTC) and fire.missed == 119
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 1, 5, 14, 1, tzinfo=UTC)
    schedules_tick()
    assert Run.objects.count() == 1


def test_spring_forward_neither_skips_nor_doubles(workflow, clock):
    # New York, 2026-03-08: clocks jump from 02:00 to 03:00.
    clock.now = datetime(2026, 3, 7, 17, 0, tzinfo=UTC)
    nightly = make(workflow, cron="30 2 * * *", tz="America/New_York", name="nightly")
    hourly = make(workflow, cron="30 * * * *", tz="America/New_York", name="hourly")
    run_through(clock, datetime(2026, 3, 9, 17, 0, tzinfo=UTC), step=timedelta(minutes=10))
    # 02:30 does not exist on the 8th: it runs once, an hour after 02:00 like every other night would.
    assert local_run_times(nightly, "America/New_York") == ["03-08 03:30-0400", "03-09 02:30-0400"]
    hours = local_run_times(hourly, "America/New_York")
    on_the_day = [t for t in hours if t.startswith("03-08")]
    assert len(on_the_day) == 23  # a 23-hour day: one run per hour of it
    assert "03-08 01:30-0500" in on_the_day and "03-08 03:30-0400" in on_the_day
    assert len(set(hours)) == len(hours)


def test_fall_back_neither_skips_nor_doubles(workflow, clock):
    # New York, 2026-11-01: 01:00-02:00 happens twice.
    clock.now = datetime(2026, 10, 31, 17, 0, tzinfo=UTC)
    nightly = make(workflow, cron="30 1 * * *", tz="America/New_York", name="nightly")
    hourly = make(workflow, cron="30 * * * *", tz="America/New_York", name="hourly")
    run_through(clock, datetime(2026, 11, 2, 17, 0, tzinfo=UTC), step=timedelta(minutes=10))
    assert local_run_times(nightly, "America/New_York") == ["11-01 01:30-0400", "11-02 01:30-0500"]
    on_the_day = [t for t in local_run_times(hourly, "America/New_York") if t.startswith("11-01")]
    assert len(on_the_day) == 25  # a 25-hour day
    assert "11-01 01:30-0400" in on_the_day and "11-01 01:30-0500" in on_the_day


def test_inactive_workflow_pauses_the_schedule(workflow, clock):
    schedule = make(workflow)
    workflow_update(workflow=workflow, user=None, definition=workflow.definition, status="inactive")
    clock.now += timedelta(minutes=5)
    schedules_tick()
    schedule.refresh_from_db()
    assert not Run.objects.exists()
    assert schedule.active is False and schedule.next_run_at is None
    assert "inactive" in schedule.last_error and "paused" in schedule.last_error
    assert AuditEvent.objects.filter(action="schedule.pause", resource_id=str(schedule.pk)).exists()
    # Once the workflow runs again, activating the schedule clears the error and plans from now.
    workflow_update(workflow=workflow, user=None, definition=workflow.definition, status="active")
    schedule = schedule_update(schedule=schedule, user=None, data={"active": True})
    assert schedule.last_error == "" and schedule.next_run_at == datetime(2026, 1, 5, 12, 10, tzinfo=UTC)


def test_deleted_workflow_pauses_the_schedule(workflow, clock):
    schedule = make(workflow)
    workflow_delete(workflow=workflow, user=None)
    clock.now += timedelta(minutes=5)
    schedules_tick()
    schedule.refresh_from_db()
    assert not Run.objects.exists() and schedule.active is False and "deleted" in schedule.last_error


def test_input_the_workflow_no_longer_accepts_pauses_the_schedule(workflow, clock):
    schedule = make(workflow)
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    workflow_update(workflow=workflow, user=None, definition={**workflow.definition, "input_schema": schema})
    clock.now += timedelta(minutes=5)
    schedules_tick()
    schedule.refresh_from_db()
    assert not Run.objects.exists() and schedule.active is False
    assert "input_data" in schedule.last_error or "required" in schedule.last_error
