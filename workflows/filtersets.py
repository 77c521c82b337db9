import django_filters

from core.api.filters import MultipleChoiceFilter
from workflows.choices import WorkflowStatus
from workflows.models import LIVE, Workflow


class WorkflowFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(
        field_name="name", lookup_expr="icontains", max_length=255, help_text="Case-insensitive substring of the name."
    )
    status = MultipleChoiceFilter(
        choices=WorkflowStatus.choices,
        method="filter_status",
        help_text="One or more statuses. Deleted workflows show only when asked for.",
    )

    class Meta:
        model = Workflow
        fields = ["name", "status"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(status__in=value) if value else queryset

    @property
    def qs(self):
        queryset = super().qs
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(LIVE)
        return queryset
