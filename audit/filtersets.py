import django_filters

from audit.models import AuditEvent
from core.api.filters import FilterSet, StringListFilter


class AuditEventFilterSet(FilterSet):
    user = django_filters.CharFilter(field_name="user", max_length=150, help_text="Username (exact).")
    action = StringListFilter(field_name="action", help_text="One or more actions, e.g. agent.create,agent.update.")
    resource_type = django_filters.CharFilter(field_name="resource_type", max_length=32)
    resource_id = django_filters.CharFilter(field_name="resource_id", max_length=64)
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601; events at or after this instant."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601; events before this instant."
    )

    class Meta:
        model = AuditEvent
        fields = ["user", "action", "resource_type", "resource_id", "created_after", "created_before"]
