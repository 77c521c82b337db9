from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from core.admin_mixins import ServiceErrorsAdminMixin
from workflows import services
from workflows.models import Workflow, WorkflowVersion


class VersionInline(admin.TabularInline):
    model = WorkflowVersion
    fields = ("version", "created_at", "created_by", "definition")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Workflow)
class WorkflowAdmin(ServiceErrorsAdminMixin, SimpleHistoryAdmin):
    """Definitions are edited through the API (they are validated as a whole); the admin shows
    them, their versions and their history, and deletes (softly, with an audit event)."""

    list_display = ("name", "version", "status", "updated_at", "updated_by")
    list_filter = ("status",)
    search_fields = ("name", "description")
    readonly_fields = (
        "id",
        "name",
        "description",
        "version",
        "status",
        "definition",
        "created_at",
        "updated_at",
        "deleted_at",
        "created_by",
        "updated_by",
    )
    inlines = [VersionInline]
    history_list_display = ("version", "status")

    def has_add_permission(self, request):
        return False

    def delete_model(self, request, obj):
        services.workflow_delete(workflow=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for workflow in queryset.live():
            services.workflow_delete(workflow=workflow, user=request.user)
