import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from agents.choices import DEFAULT_RETRY_CONFIG, DEFAULT_TIMEOUT_MS, AgentStatus, AuthType


def default_retry_config():
    return dict(DEFAULT_RETRY_CONFIG)


class Agent(models.Model):
    """An external service that runs tasks over the A2A protocol."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    url = models.URLField(max_length=2048)
    description = models.TextField(blank=True, default="")
    auth_type = models.CharField(max_length=16, choices=AuthType.choices, default=AuthType.NONE)
    auth_config = models.JSONField(default=dict, blank=True)
    timeout_ms = models.PositiveIntegerField(default=DEFAULT_TIMEOUT_MS)
    retry_config = models.JSONField(default=default_retry_config)
    status = models.CharField(max_length=16, choices=AgentStatus.choices, default=AgentStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # Names are unique among agents that are not deleted, so a deleted name can be reused.
            models.UniqueConstraint(
                fields=["name"], condition=~Q(status=AgentStatus.DELETED), name="agent_name_unique_not_deleted"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="agent_status_created_idx"),
            models.Index(fields=["created_at"], name="agent_created_idx"),
            models.Index(fields=["name"], name="agent_name_idx"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == AgentStatus.ACTIVE
