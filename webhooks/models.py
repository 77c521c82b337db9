import uuid

from django.db import models
from django.db.models import F, Q

from core.fields import EncryptedCharField
from runs.models import Event
from webhooks.choices import OPEN_DELIVERY, DeliveryStatus


class WebhookEndpointQuerySet(models.QuerySet):
    def live(self):
        """Endpoints that are not deleted."""
        return self.filter(deleted_at__isnull=True)


class WebhookEndpoint(models.Model):
    """A receiver URL that gets the events it subscribes to, signed with its own secret."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2048)
    description = models.TextField(blank=True, default="")
    event_types = models.JSONField(help_text='Types and wildcards ("run.completed", "step.*", "*").')
    workflow_id = models.UUIDField(null=True, blank=True, help_text="Only events of this workflow, when set.")
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    # Encrypted in the database (signing reads it in clear). It leaves the server only in the create and
    # rotate responses. 255: room for the encrypted form of a 50-character whsec_ secret (171 characters).
    secret = EncryptedCharField(max_length=255, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_by = models.CharField(max_length=150, blank=True, default="")

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        verbose_name = "webhook"
        ordering = ("-created_at", "-id")

    def __str__(self):
        return self.url


class Delivery(models.Model):
    """One event (or ping) for one endpoint. Its id is the `webhook-id` header, the same on every attempt."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    # Copied from the event: the list filters on them and the sender orders by them without a join.
    event_type = models.CharField(max_length=32)
    run_id = models.UUIDField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True, help_text="The body when there is no event (ping).")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    # Attempts since it was queued or redelivered: where it is in the retry schedule.
    tries = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(F("endpoint"), F("created_at").desc(), F("id").desc(), name="delivery_endpoint_idx"),
            # The sender's two questions: what is due, and is an earlier delivery of this run still open.
            models.Index(fields=["next_attempt_at"], condition=Q(status__in=OPEN_DELIVERY), name="delivery_due_idx"),
            models.Index(
                fields=["endpoint", "run_id", "event"], condition=Q(status__in=OPEN_DELIVERY), name="delivery_open_idx"
            ),
        ]

    def __str__(self):
        return f"{self.event_type} -> {self.endpoint_id} ({self.status})"

    def body(self) -> dict:
        return self.event.body() if self.event_id else self.payload


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery and what came back."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    response_body = models.TextField(blank=True, default="", help_text="The start of the response body only.")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ("delivery", "number")
        indexes = [models.Index(fields=["delivery", "number"], name="delivery_attempt_idx")]

    def __str__(self):
        return f"#{self.number} {self.status_code or self.error[:40]}"
