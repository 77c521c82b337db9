from core.api.filters import MultipleChoiceFilter, SoftDeleteFilterSet
from workflows.choices import WorkflowStatus
from workflows.models import Workflow


class WorkflowFilterSet(SoftDeleteFilterSet):
    status = MultipleChoiceFilter(
        choices=WorkflowStatus.choices,
        method="filter_status",
        help_text="One or more statuses. Deleted workflows show only when asked for.",
    )

    class Meta:
        model = Workflow
        fields = ["name", "status"]
