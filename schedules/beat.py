"""Starting the runs of due schedules, exactly once per due time.

Beat sends `schedules_tick` every SCHEDULE_TICK_SECONDS; any worker may run it, several at once. Each
batch is claimed with SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL): a schedule locked by one process
is skipped by the others. In the same transaction the batch's (schedule, due_at) rows are inserted in
one statement that skips rows already there (unique: a second guard, e.g. on SQLite, which has no row
locks), runs start for the rows this claim wrote, and next_run_at moves past now. Due times missed
while nothing ran (all processes down) become one catch-up run for the earliest of them, not a burst:
next_run_at jumps to the first due time after now.
"""

import logging
import uuid

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from runs.services import run_execute
from schedules.cron import next_after
from schedules.models import Schedule, ScheduleFire
from schedules.services import schedule_pause, workflow_problem

logger = logging.getLogger(__name__)


def _missed(schedule: Schedule, now) -> int:
    """Due times after next_run_at up to now (folded into this run); counted up to a bound, for the record."""
    count, at = 0, schedule.next_run_at
    while count < 1000 and (at := next_after(schedule.cron, schedule.timezone, at)) <= now:
        count += 1
    return count


def _start(schedule: Schedule, fire: ScheduleFire) -> bool:
    """Starts the run of the fire's due time; False when the schedule was paused instead."""
    problem = workflow_problem(schedule.workflow)
    if problem is None:
        try:
            fire.run = run_execute(
                workflow=schedule.workflow,
                input_data=schedule.input_data,
                user=None,
                triggered_by=f"schedule:{schedule.name}",
            )
        except DomainError as error:  # an agent gone, an input the edited workflow no longer accepts
            problem = f"Could not start a run: {error.message}"
    if problem:
        fire.error = problem
        schedule_pause(schedule, problem)
        return False
    schedule.last_run, schedule.last_run_at, schedule.last_error = fire.run, timezone.now(), ""
    return True


def schedules_fire_due(now=None, *, limit: int | None = None) -> int:
    """Claims up to `limit` due schedules and starts their runs; returns how many it claimed."""
    now = now or timezone.now()
    limit = limit or settings.SCHEDULE_BATCH_SIZE
    with transaction.atomic():
        batch = list(
            Schedule.objects.due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("workflow")
            .order_by("next_run_at")[:limit]
        )
        if not batch:
            return 0
        # The fire rows first, in one statement: a (schedule, due_at) that already has one (another
        # process started it) is left alone, and only the rows carrying this claim's token are ours.
        claim = uuid.uuid4()
        fires = {
            schedule.pk: ScheduleFire(
                schedule=schedule, due_at=schedule.next_run_at, claim=claim, missed=_missed(schedule, now)
            )
            for schedule in batch
        }
        ScheduleFire.objects.bulk_create(fires.values(), ignore_conflicts=True)
        ours = dict(ScheduleFire.objects.filter(claim=claim).values_list("schedule_id", "id"))
        kept, started = [], []
        for schedule in batch:
            schedule.next_run_at = next_after(schedule.cron, schedule.timezone, max(schedule.next_run_at, now))
            fire = fires[schedule.pk]
            if schedule.pk not in ours:
                kept.append(schedule)  # moves on without a run
            elif _start(schedule, fire):
                kept.append(schedule)
            fire.pk = ours.get(schedule.pk)
            if fire.pk:
                started.append(fire)
        Schedule.objects.bulk_update(kept, ["next_run_at", "last_run", "last_run_at", "last_error"])
        ScheduleFire.objects.bulk_update(started, ["run", "error"])
    return len(batch)


@shared_task(name="schedules.tasks.schedules_tick", ignore_result=True)
def schedules_tick() -> int:
    """Periodic: start what is due, batch after batch; each full batch asks one more worker to help."""
    total = 0
    while True:
        claimed = schedules_fire_due()
        total += claimed
        if claimed < settings.SCHEDULE_BATCH_SIZE:
            break
        schedules_tick.delay()  # a full batch: more may be due, and another worker can take them meanwhile
    if total:
        logger.info("Started %d scheduled runs", total)
    return total
