import django_filters

from core.api.filters import MultipleChoiceFilter
from runs.choices import LogLevel, RunStatus
from runs.models import Run, RunLog, StepExecution


class RunFilterSet(django_filters.FilterSet):
    status = MultipleChoiceFilter(choices=RunStatus.choices, help_text="One or more statuses, e.g. FAILED,CANCELLED.")
    workflow_id = django_filters.UUIDFilter(field_name="workflow_id")
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601; runs created at or after this instant."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601; runs created before this instant."
    )

    class Meta:
        model = Run
        fields = ["status", "workflow_id", "created_after", "created_before"]


class StepExecutionFilterSet(django_filters.FilterSet):
    step_id = django_filters.CharFilter(field_name="step_id", max_length=255)
    attempt = django_filters.NumberFilter(field_name="attempt", min_value=1)

    class Meta:
        model = StepExecution
        fields = ["step_id", "attempt"]


class RunLogFilterSet(django_filters.FilterSet):
    level = MultipleChoiceFilter(choices=LogLevel.choices, help_text="One or more levels, e.g. warning,error.")
    step_id = django_filters.CharFilter(field_name="step_id", max_length=255)

    class Meta:
        model = RunLog
        fields = ["level", "step_id"]
