import django_filters

from core.api.filters import FilterSet
from schedules.models import Schedule


class ScheduleFilterSet(FilterSet):
    name = django_filters.CharFilter(
        field_name="name", lookup_expr="icontains", max_length=200, help_text="Case-insensitive substring of the name."
    )
    active = django_filters.BooleanFilter(field_name="active")
    workflow_id = django_filters.UUIDFilter(field_name="workflow_id")

    class Meta:
        model = Schedule
        fields = ["name", "active", "workflow_id"]
