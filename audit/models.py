import uuid

from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    pass


class AuditEvent(models.Model):
    """Who did what to which resource, with the changes. Written in the same transaction as the
    change itself; never edited; removed only by the retention purge."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    user = models.CharField(max_length=150, blank=True, help_text="Username of the actor; empty for the system.")
    api_key_prefix = models.CharField(max_length=16, blank=True, help_text="The API key used, if any.")
    action = models.CharField(max_length=64, help_text="e.g. agent.create, workflow.update, run.execute")
    resource_type = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [old, new]}, secrets masked")
    input_data = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_created_idx"),
            models.Index(fields=["user", "-created_at"], name="audit_user_idx"),
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
            models.Index(fields=["resource_type", "resource_id", "-created_at"], name="audit_resource_idx"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.user or 'system'} {self.action} {self.resource_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are removed only by the retention purge.")
