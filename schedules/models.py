import uuid

from django.db import models
from django.db.models import Q

from runs.models import Run
from workflows.models import Workflow


class ScheduleQuerySet(models.QuerySet):
    def live(self):
        """Schedules that are not deleted."""
        return self.filter(deleted_at__isnull=True)

    def due(self, now):
        return self.filter(active=True, deleted_at__isnull=True, next_run_at__lte=now)


class Schedule(models.Model):
    """Runs a workflow with a fixed input at the times of a cron expression, in a time zone."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    cron = models.CharField(max_length=200, help_text="Five fields: minute hour day-of-month month day-of-week.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name; the cron is in its wall time.")
    input_data = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    # Null while inactive. The beat task claims rows whose next_run_at has come and moves it on in the
    # same transaction (row lock): that is what makes each due time start one run.
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_by = models.CharField(max_length=150, blank=True, default="")

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=Q(deleted_at__isnull=True), name="schedule_name_uniq")
        ]
        indexes = [
            models.Index(
                fields=["next_run_at"], condition=Q(active=True, deleted_at__isnull=True), name="schedule_due_idx"
            )
        ]

    def __str__(self):
        return self.name


class ScheduleFire(models.Model):
    """One due time of a schedule that was started: the unique (schedule, due_at) pair is the second
    guard against a double run, should two processes ever both see the same due time."""

    id = models.BigAutoField(primary_key=True)
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires", db_index=False)
    due_at = models.DateTimeField()
    fired_at = models.DateTimeField(auto_now_add=True)
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    missed = models.PositiveIntegerField(default=0, help_text="Earlier due times folded into this catch-up run.")
    error = models.TextField(blank=True, default="")
    # The batch that wrote the row: after an insert that skips rows already there, the claimer's own ones.
    claim = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ("schedule", "-due_at")
        constraints = [models.UniqueConstraint(fields=["schedule", "due_at"], name="schedule_fire_uniq")]
        indexes = [models.Index(fields=["claim"], name="schedule_fire_claim_idx")]

    def __str__(self):
        return f"{self.schedule_id} @ {self.due_at.isoformat()}"
