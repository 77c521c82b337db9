from django.db import models
from rest_framework import serializers

from core.api.exceptions import BODY_FIELD
from core.formats import iso_datetime

__all__ = ["iso_datetime"]  # re-exported: serializers use it from here


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
