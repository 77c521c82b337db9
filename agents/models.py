import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from agents.choices import (
    DEFAULT_RETRY_CONFIG,
    DEFAULT_TIMEOUT_MS,
    LIVE_STATUSES,
    SECRET_AUTH_KEYS,
    AgentStatus,
    AuthType,
)
from core.fields import EncryptedSecretsJSONField

MAX_CONCURRENCY_LIMIT = 10_000


def default_retry_config():
    return dict(DEFAULT_RETRY_CONFIG)


class AgentQuerySet(models.QuerySet):
    def live(self):
        """Agents that are not deleted: the ones names refer to (and the partial index covers)."""
        return self.filter(status__in=LIVE_STATUSES)


class Agent(models.Model):
    """An external service that runs tasks over the A2A protocol."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    url = models.URLField(max_length=2048)
    description = models.TextField(blank=True, default="")
    auth_type = models.CharField(max_length=16, choices=AuthType.choices, default=AuthType.NONE)
    # Its secrets (token, key) are encrypted in the database; reading the field gives them in clear.
    auth_config = EncryptedSecretsJSONField(default=dict, blank=True, secret_keys=SECRET_AUTH_KEYS)
    timeout_ms = models.PositiveIntegerField(default=DEFAULT_TIMEOUT_MS)
    retry_config = models.JSONField(default=default_retry_config)
    # Null (unlimited) by default; enforced per bridge process (docs/execution.md, "Limits").
    max_concurrency = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CONCURRENCY_LIMIT)],
        help_text="Calls to this agent in flight at once per bridge process; empty: no limit.",
    )
    # Null: the defaults (agents.breaker.DEFAULT_CONFIG); else the whole configuration, merged at save.
    circuit_breaker_config = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=AgentStatus.choices, default=AgentStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Usernames, not foreign keys: they read without a join and survive the user's deletion.
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_by = models.CharField(max_length=150, blank=True, default="")

    objects = AgentQuerySet.as_manager()

    # Secrets stay out of the history tables (and so out of the admin's History view).
    history = HistoricalRecords(excluded_fields=["auth_config", "updated_at"])

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # Names are unique among agents that are not deleted, so a deleted name can be reused.
            models.UniqueConstraint(
                fields=["name"], condition=~Q(status=AgentStatus.DELETED), name="agent_name_unique_not_deleted"
            ),
        ]
        indexes = [
            # The default list: live agents, newest first. Partial, so deleted rows cost nothing,
            # and it covers (created_at, id) so counts and deep pages are index-only scans.
            models.Index(
                F("created_at").desc(),
                F("id").desc(),
                condition=Q(status__in=LIVE_STATUSES),
                name="agent_live_created_idx",
            ),
            models.Index(fields=["status", "-created_at", "-id"], name="agent_status_created_idx"),
            models.Index(fields=["name"], name="agent_name_idx"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == AgentStatus.ACTIVE


class AgentCircuit(models.Model):
    """An agent's circuit breaker state when there is no Redis (agents.breaker_store.DatabaseStore):
    one row per agent, changed under its row lock so that every bridge process sees the same state."""

    agent = models.OneToOneField(Agent, primary_key=True, on_delete=models.CASCADE, related_name="circuit")
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"circuit of {self.agent_id}"
