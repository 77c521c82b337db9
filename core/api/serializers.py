from datetime import UTC

from django.db import models
from rest_framework import serializers

from core.api.exceptions import BODY_FIELD


def iso_datetime(value) -> str | None:
    """A datetime as every response shows it: ISO 8601 in UTC with a 'Z', as DRF renders it.

    Done directly because DRF's field looks the current time zone up on every call.
    """
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class StrictFieldsMixin:
    """Rejects body fields the serializer does not know (422), so typos are not silently dropped.

    Read-only fields are known: a client may send back what it read and they are ignored.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")] for name in unknown}
                )
        elif data is not None and not hasattr(data, "getlist"):
            raise serializers.ValidationError(
                {BODY_FIELD: [serializers.ErrorDetail("Expected a JSON object.", code="invalid")]}
            )
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted path into the request body, or a query parameter name.")
    message = serializers.CharField()
    type = serializers.CharField(help_text="Machine-readable reason, e.g. required, invalid, max_length.")


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    error = serializers.CharField(help_text="Machine-readable error code, e.g. validation_error, not_found.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    errors = ErrorItemSerializer(many=True, required=False, help_text="Field-level errors (422 only).")
    status_code = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    path = serializers.CharField()
    request_id = serializers.CharField(help_text="Also in the X-Request-ID response header.")
