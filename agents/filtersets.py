from agents.choices import AgentStatus
from agents.models import Agent
from core.api.filters import MultipleChoiceFilter, SoftDeleteFilterSet


class AgentFilterSet(SoftDeleteFilterSet):
    status = MultipleChoiceFilter(
        choices=AgentStatus.choices,
        method="filter_status",
        help_text="One or more statuses (status=a&status=b or status=a,b). Deleted agents show only when asked for.",
    )

    class Meta:
        model = Agent
        fields = ["name", "status"]
