from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.api.serializers import StrictCharField, StrictModelSerializer
from webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint

_WEBHOOK = {
    "id": "7a4f0c2e-1d3b-4e5f-9a6b-8c7d6e5f4a3b",
    "url": "https://hooks.example.com/workflow-events",
    "description": "Tell the ops channel about failed runs.",
    "event_types": ["run.failed", "step.*"],
    "workflow_id": None,
    "active": True,
    "disabled_reason": "",
    "created_at": "2026-11-25T10:00:00Z",
    "updated_at": "2026-11-25T10:00:00Z",
    "created_by": "admin",
    "updated_by": "admin",
}
_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw3WvGNVqp+Ts="
_ATTEMPT = {
    "number": 1,
    "attempted_at": "2026-11-26T09:00:01.300000Z",
    "status_code": 503,
    "duration_ms": 42,
    "response_body": "upstream unavailable",
    "error": "HTTP 503",
}
_DELIVERY = {
    "id": "3c9e8d7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f",
    "event_id": 1042,
    "event_type": "run.failed",
    "run_id": "5b0f2d4c-8f57-4a8e-9c43-0f3c2a9d6b11",
    "status": "SUCCEEDED",
    "attempt_count": 2,
    "last_status_code": 200,
    "last_error": "",
    "last_attempt_at": "2026-11-26T09:00:06.400000Z",
    "next_attempt_at": None,
    "created_at": "2026-11-26T09:00:01.250000Z",
    "completed_at": "2026-11-26T09:00:06.450000Z",
    "attempts": [_ATTEMPT, {**_ATTEMPT, "number": 2, "status_code": 200, "response_body": "ok", "error": ""}],
}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Failed runs and every step event",
            request_only=True,
            value={
                "url": "https://hooks.example.com/workflow-events",
                "description": "Tell the ops channel about failed runs.",
                "event_types": ["run.failed", "step.*"],
            },
        ),
        OpenApiExample("Webhook", response_only=True, value=_WEBHOOK),
    ]
)
class WebhookSerializer(StrictModelSerializer):
    url = serializers.URLField(
        max_length=2048,
        help_text="http or https; by default it may not resolve to loopback, private or other internal addresses.",
    )
    description = StrictCharField(max_length=10_000, allow_blank=True, required=False)
    event_types = serializers.ListField(
        child=StrictCharField(max_length=64),
        max_length=50,
        help_text='Event types ("run.completed"), wildcards ("run.*", "step.*") or "*" for all.',
    )
    workflow_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Only events of this workflow's runs; null for all workflows."
    )
    active = serializers.BooleanField(required=False, help_text="Inactive endpoints get no deliveries (pings aside).")

    class Meta:
        model = WebhookEndpoint
        fields = list(_WEBHOOK)
        read_only_fields = ["id", "disabled_reason", "created_at", "updated_at", "created_by", "updated_by"]


@extend_schema_serializer(
    examples=[OpenApiExample("Webhook with its secret (shown this once)", value={**_WEBHOOK, "secret": _SECRET})]
)
class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="Signs every delivery (Standard Webhooks). Shown only now: store it in the receiver.",
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = list(_ATTEMPT)
        read_only_fields = fields


@extend_schema_serializer(
    examples=[OpenApiExample("Delivered on the second attempt", value=_DELIVERY, status_codes=["200", "202"])]
)
class DeliverySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(read_only=True, help_text="Also the `webhook-id` header, the same on every attempt.")
    event_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="Null for a ping.")
    attempts = DeliveryAttemptSerializer(many=True, read_only=True, help_text="Oldest first.")

    class Meta:
        model = Delivery
        fields = list(_DELIVERY)
        read_only_fields = fields
