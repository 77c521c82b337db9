import django_filters

from core.api.filters import FilterSet, MultipleChoiceFilter
from runs.choices import LogLevel, RunStatus, StepStatus
from runs.models import Run, RunLog, StepExecution


# distinct=False on the status filters: django-filter's default (True) makes the list and its count a
# SELECT DISTINCT over every column (a 10 s sort at 10 million runs), and a filter on a column of the
# table itself joins nothing that could repeat a row.
class RunFilterSet(FilterSet):
    status = MultipleChoiceFilter(
        choices=RunStatus.choices, distinct=False, help_text="One or more statuses, e.g. FAILED,CANCELLED."
    )
    workflow_id = django_filters.UUIDFilter(field_name="workflow_id")
    workflow_definition_id = django_filters.UUIDFilter(
        field_name="workflow_id", help_text="Same as workflow_id (the older API's name)."
    )
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601; runs created at or after this instant."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601; runs created before this instant."
    )
    rerun_of = django_filters.UUIDFilter(field_name="rerun_of_id", help_text="Runs made by rerunning this run.")
    waiting_for_input = django_filters.ChoiceFilter(
        choices=(("true", "true"), ("false", "false")),
        method="waiting_filter",
        help_text="true: runs with a step waiting for a person (INPUT_REQUIRED); false: the others.",
    )

    class Meta:
        model = Run
        fields = [
            "status",
            "workflow_id",
            "workflow_definition_id",
            "created_after",
            "created_before",
            "waiting_for_input",
            "rerun_of",
        ]

    def waiting_filter(self, queryset, name, value):
        # null means false (the column came nullable); `true` is the partial index run_waiting_idx.
        waiting = queryset.filter(waiting_for_input=True)
        return waiting if value == "true" else queryset.exclude(waiting_for_input=True)


class StepExecutionFilterSet(FilterSet):
    step_id = django_filters.CharFilter(field_name="step_id", max_length=255)
    attempt = django_filters.NumberFilter(field_name="attempt", min_value=1)
    step_type = django_filters.CharFilter(
        field_name="step_type", max_length=16, help_text="agent, a block type, iteration or branch."
    )
    status = MultipleChoiceFilter(choices=StepStatus.choices, distinct=False, help_text="One or more statuses.")
    iteration = django_filters.NumberFilter(field_name="iteration", min_value=0, help_text="Loop iteration index.")
    branch = django_filters.CharFilter(field_name="branch", max_length=255, help_text="Fork-join branch name.")
    parent_id = django_filters.UUIDFilter(field_name="parent_id", help_text="The block, iteration or branch row.")

    class Meta:
        model = StepExecution
        fields = ["step_id", "attempt", "step_type", "status", "iteration", "branch", "parent_id"]


class RunLogFilterSet(FilterSet):
    level = MultipleChoiceFilter(
        choices=LogLevel.choices, distinct=False, help_text="One or more levels, e.g. warning,error."
    )
    step_id = django_filters.CharFilter(field_name="step_id", max_length=255)

    class Meta:
        model = RunLog
        fields = ["level", "step_id"]
