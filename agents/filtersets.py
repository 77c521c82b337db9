import django_filters

from agents.choices import AgentStatus
from agents.models import Agent
from core.api.filters import MultipleChoiceFilter


class AgentFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(
        field_name="name", lookup_expr="icontains", max_length=255, help_text="Case-insensitive substring of the name."
    )
    status = MultipleChoiceFilter(
        choices=AgentStatus.choices,
        method="filter_status",
        help_text="One or more statuses (status=a&status=b or status=a,b). Deleted agents show only when asked for.",
    )

    class Meta:
        model = Agent
        fields = ["name", "status"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(status__in=value) if value else queryset

    @property
    def qs(self):
        queryset = super().qs
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status__in=[AgentStatus.ACTIVE, AgentStatus.INACTIVE])
        return queryset
