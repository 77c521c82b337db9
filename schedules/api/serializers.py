from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.api.serializers import StrictCharField, StrictModelSerializer
from schedules.models import Schedule

_SCHEDULE = {
    "id": "2d6c1f0a-9b8e-4c7d-a6f5-e4d3c2b1a090",
    "name": "nightly-report",
    "workflow_id": "00000000-0000-4000-8000-000000000001",
    "cron": "30 2 * * *",
    "timezone": "Europe/Paris",
    "input_data": {"text": "nightly report"},
    "active": True,
    "next_run_at": "2026-11-27T01:30:00Z",
    "last_run_at": "2026-11-26T01:30:00.120000Z",
    "last_run_id": "5b0f2d4c-8f57-4a8e-9c43-0f3c2a9d6b11",
    "last_error": "",
    "created_at": "2026-11-25T10:00:00Z",
    "updated_at": "2026-11-26T01:30:00.130000Z",
    "created_by": "admin",
}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Every night at 02:30, Paris time",
            request_only=True,
            value={k: _SCHEDULE[k] for k in ("name", "workflow_id", "cron", "timezone", "input_data")},
        ),
        OpenApiExample("Schedule", response_only=True, value=_SCHEDULE),
    ]
)
class ScheduleSerializer(StrictModelSerializer):
    name = StrictCharField(max_length=200)
    workflow_id = serializers.UUIDField(help_text="The workflow each run executes (its current version then).")
    cron = StrictCharField(
        max_length=200, help_text="Five fields in the schedule's time zone: minute hour day-of-month month day-of-week."
    )
    timezone = StrictCharField(max_length=64, required=False, help_text="IANA name, default UTC.")
    input_data = serializers.JSONField(
        required=False, help_text="The input of every run, checked against the workflow's input_schema."
    )
    active = serializers.BooleanField(
        required=False, help_text="Inactive schedules start nothing; set false by the system when it pauses one."
    )
    last_run_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = Schedule
        fields = list(_SCHEDULE)
        read_only_fields = [
            "id",
            "next_run_at",
            "last_run_at",
            "last_run_id",
            "last_error",
            "created_at",
            "updated_at",
            "created_by",
        ]
