from django.contrib import admin
from unfold.admin import ModelAdmin

from audit.models import AuditEvent
from core.admin_mixins import ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Read only: the trail is append-only, in the admin as in the API."""

    list_display = ("created_at", "user", "action", "resource_type", "resource_id", "ip", "request_id")
    list_filter = ("action", "resource_type")
    search_fields = ("user", "resource_id", "request_id")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AuditEvent._meta.fields]
