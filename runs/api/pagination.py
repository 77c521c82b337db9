from core.api.pagination import PageNumberPagination
from runs.counts import run_total
from runs.filtersets import RunFilterSet
from runs.models import Run

# The filters the counters can answer (runs/counts.py); any other one set means COUNT(*).
COUNTED_FILTERS = {"status", "workflow_id", "workflow_definition_id", "created_after", "created_before"}


class RunPagination(PageNumberPagination):
    """The runs list's exact `total` from the run counters, where its filters allow (PostgreSQL).

    This relies on the list's queryset being all runs narrowed only by RunFilterSet: a list that
    hides some runs from some users must count them instead."""

    def count(self, queryset, request, view) -> int:
        if getattr(view, "action", None) == "list":
            total = self._counted(request, getattr(view, "applied_filterset", None))
            if total is not None:
                return total
        return queryset.count()

    def _counted(self, request, filterset=None) -> int | None:
        if not isinstance(filterset, RunFilterSet):
            filterset = RunFilterSet(request.query_params, queryset=Run.objects.none())
        if not filterset.is_valid():
            return None
        values = filterset.form.cleaned_data
        if any(values.get(name) not in (None, "", []) for name in set(values) - COUNTED_FILTERS):
            return None
        workflows = {values.get("workflow_id"), values.get("workflow_definition_id")} - {None}
        if len(workflows) > 1:
            return None  # two different workflows: nothing matches, and COUNT(*) finds that at once
        return run_total(
            statuses=values.get("status") or None,
            workflow_id=next(iter(workflows), None),
            created_after=values.get("created_after"),
            created_before=values.get("created_before"),
        )
