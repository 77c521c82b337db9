from datetime import UTC

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.utils import timezone
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import FieldTextFilter, RangeDateTimeFilter
from unfold.utils import parse_datetime_str

from audit.models import AuditEvent
from core.admin_columns import moment_column
from core.admin_mixins import ReadOnlyAdminMixin
from core.admin_paging import BigListAdminMixin, choices_filter

# What the services write as resource_type (an unknown one is still reachable by its URL parameter).
RESOURCE_TYPES = (
    "agent",
    "api_key",
    "encryption_key",
    "group",
    "run",
    "schedule",
    "user",
    "webhook",
    "webhook_delivery",
    "workflow",
)


class UtcRangeFilter(RangeDateTimeFilter):
    """The theme's from/to filter, read as UTC (the zone every time of the admin is shown in); it would
    compare naive times. A time left empty is midnight."""

    def queryset(self, request, queryset):
        bounds = {}
        for end, lookup in (("from", "gte"), ("to", "lte")):
            day = self.used_parameters.get(f"{self.parameter_name}_{end}_0")
            if not day:
                continue
            moment = parse_datetime_str(
                f"{day} {self.used_parameters.get(f'{self.parameter_name}_{end}_1') or '00:00'}"
            )
            if moment is None:
                raise IncorrectLookupParameters(f"Not a date and time: {day}")
            bounds[f"{self.field_path}__{lookup}"] = (
                timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment
            )
        return queryset.filter(**bounds)


@admin.register(AuditEvent)
class AuditEventAdmin(BigListAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Read only: the trail is append-only, in the admin as in the API."""

    list_display = ("created_shown", "user", "action", "resource_type", "resource_id", "ip", "request_id")
    # Typed or from known lists: Django's default lists (a DISTINCT over the trail) read every row to draw.
    list_filter = (
        ("action", FieldTextFilter),
        choices_filter("resource_type", RESOURCE_TYPES, "resource type"),
        ("user", FieldTextFilter),
        ("created_at", UtcRangeFilter),
    )
    list_filter_submit = True
    search_fields = ("=user", "=resource_id", "=request_id")
    created_shown = moment_column("created_at", "When")
    readonly_fields = [field.name for field in AuditEvent._meta.fields]
