import uuid

from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from workflows.choices import WorkflowStatus

LIVE_STATUSES = [WorkflowStatus.ACTIVE, WorkflowStatus.INACTIVE]  # not deleted
LIVE = Q(status__in=LIVE_STATUSES)


class WorkflowQuerySet(models.QuerySet):
    def live(self):
        """Workflows that are not deleted (names are unique among these)."""
        return self.filter(LIVE)


class Workflow(models.Model):
    """A workflow and its current definition. Every saved definition is also kept, unchanged, as a
    WorkflowVersion; runs pin the version they execute."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=WorkflowStatus.choices, default=WorkflowStatus.ACTIVE)
    version = models.PositiveIntegerField(default=1)
    definition = models.JSONField(help_text="The current definition, normalised (the executor's plan).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_by = models.CharField(max_length=150, blank=True, default="")

    objects = WorkflowQuerySet.as_manager()

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=LIVE, name="workflow_name_unique_live"),
        ]
        indexes = [
            models.Index(F("created_at").desc(), F("id").desc(), condition=LIVE, name="workflow_live_created_idx"),
            models.Index(fields=["status", "-created_at", "-id"], name="workflow_status_created_idx"),
            models.Index(fields=["name"], name="workflow_name_idx"),
            models.Index(fields=["-updated_at", "-id"], name="workflow_updated_idx"),
        ]

    def __str__(self):
        return f"{self.name} v{self.version}"


class WorkflowVersion(models.Model):
    """One saved definition of a workflow. Immutable once written."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ("workflow", "-version")
        constraints = [
            # The guard against two concurrent updates both writing version N+1.
            models.UniqueConstraint(fields=["workflow", "version"], name="workflow_version_unique"),
        ]

    def __str__(self):
        return f"{self.workflow_id} v{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Workflow versions are immutable.")
        super().save(*args, **kwargs)
