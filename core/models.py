import uuid

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from core.roles import Role


class ApiKeyManager(BaseAPIKeyManager):
    def assign_key(self, obj):
        key = super().assign_key(obj)
        # The library's primary key embeds the key's hash; ours is a plain UUID so that ids in
        # URLs and logs reveal nothing about the secret.
        obj.id = uuid.uuid4()
        return key


class ApiKey(AbstractAPIKey):
    """An API key: shown once, stored as a SHA-512 hash, looked up by its 8-character prefix."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=50)
    created = None  # replaced by created_at, the name every other resource uses
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ("-created_at", "-id")


class OutboxMessage(models.Model):
    """A Kafka message written in the same transaction as the change it announces.

    The relay sends it after commit; until then (or while Kafka is down) it waits here, so a
    request is never lost and never leaves for a change that was rolled back.
    """

    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=255)
    key = models.CharField(max_length=255)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Pending rows are those without sent_at; the relay skips them until next_attempt_at.
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # Given up on (OUTBOX_MAX_ATTEMPTS failures, or a message Kafka can never take): kept, not retried.
    dead_at = models.DateTimeField(null=True, blank=True)
    # The W3C trace context (traceparent, tracestate) of the transaction that wrote the row: the relay
    # sends it as Kafka headers, so the consumer's span joins the writer's trace. Null: no tracing.
    trace_context = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"], condition=models.Q(sent_at__isnull=True), name="outbox_pending_idx"
            ),
            models.Index(fields=["sent_at"], condition=models.Q(sent_at__isnull=False), name="outbox_sent_idx"),
        ]

    def __str__(self):
        return f"{self.topic} {self.key} #{self.id}"
