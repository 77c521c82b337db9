from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from audit.models import AuditEvent
from core.api.serializers import iso_datetime

_EXAMPLE = {
    "id": "0f8a3c1e-2b4d-4e6f-8a9b-1c2d3e4f5a6b",
    "created_at": "2026-11-25T10:00:00Z",
    "user": "alice",
    "api_key_prefix": "Xy12AbCd",
    "action": "agent.update",
    "resource_type": "agent",
    "resource_id": "3f1c2a55-6b1d-4d8e-9a57-0c4f7e2b1a10",
    "changes": {"timeout_ms": [30000, 60000], "auth_config": [{"token": "********"}, {"token": "********"}]},
    "input_data": None,
    "request_id": "6c1e0f7d2b9a4e51a7c3",
    "ip": "10.0.0.7",
}


@extend_schema_serializer(examples=[OpenApiExample("Agent updated", value=_EXAMPLE, response_only=True)])
class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = list(_EXAMPLE)
        read_only_fields = fields

    def to_representation(self, event):
        # Written out for list speed (audit lists are long); matches the declared fields.
        return {
            "id": str(event.id),
            "created_at": iso_datetime(event.created_at),
            "user": event.user,
            "api_key_prefix": event.api_key_prefix,
            "action": event.action,
            "resource_type": event.resource_type,
            "resource_id": event.resource_id,
            "changes": event.changes,
            "input_data": event.input_data,
            "request_id": event.request_id,
            "ip": event.ip,
        }
