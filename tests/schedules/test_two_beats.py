"""Two beat processes (threads with their own database connections) claiming at once start each due
time once: row locks with SKIP LOCKED on PostgreSQL, the unique (schedule, due_at) row everywhere."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from runs.models import Run
from schedules.beat import schedules_fire_due, schedules_tick
from schedules.models import Schedule, ScheduleFire
from schedules.services import schedule_create


def make_due(workflow, count: int) -> None:
    for index in range(count):
        data = {"name": f"s{index}", "workflow_id": workflow.pk, "cron": "* * * * *", "input_data": {"text": "x"}}
        schedule_create(user=None, data=data)
    Schedule.objects.update(next_run_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db(transaction=True)
def test_two_beats_claiming_together_start_each_due_time_once(workflow):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (SQLite has one writer at a time anyway)")
    make_due(workflow, 60)
    barrier, claimed, errors = threading.Barrier(2), [], []

    def beat():
        try:
            barrier.wait()
            while count := schedules_fire_due(limit=7):
                claimed.append(count)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(claimed) == 60
    assert Run.objects.count() == 60 == ScheduleFire.objects.count()
    assert set(Run.objects.values_list("triggered_by", flat=True)) == {f"schedule:s{i}" for i in range(60)}


@pytest.mark.django_db
def test_a_due_time_already_started_is_not_started_again(workflow):
    make_due(workflow, 1)
    schedules_tick()
    fire = ScheduleFire.objects.get()
    # As if a second process had read the schedule before the first moved it on.
    Schedule.objects.update(next_run_at=fire.due_at)
    schedules_tick()
    assert Run.objects.count() == 1
    assert Schedule.objects.get().next_run_at > timezone.now()
