from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from core.admin_mixins import ServiceErrorsAdminMixin
from core.errors import Conflict
from workflows import services
from workflows.choices import WorkflowStatus
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
    them, their versions and their history, deletes (softly, with an audit event) and reverts to an
    earlier state from the history: a new version through `workflow_update`, validated and audited."""

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

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        return self.shown_as_message(request, super().history_form_view, object_id, version_id, extra_context)

    def save_model(self, request, obj, form, change):
        """Every field of the page is read-only, so the only save that changes anything is a revert,
        whose `obj` is the historical state: its definition (and status) become a new version. The
        row is never saved as given, which would put back the old version number and deletion state."""
        current = Workflow.objects.get(pk=obj.pk)
        if current.status == WorkflowStatus.DELETED:
            raise Conflict("A deleted workflow cannot be changed or reverted.")
        status = obj.status if obj.status != WorkflowStatus.DELETED else None
        services.workflow_update(
            workflow=current, user=request.user, definition=services.definition_fields(obj), status=status
        )

    def delete_model(self, request, obj):
        services.workflow_delete(workflow=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for workflow in queryset.live():
            services.workflow_delete(workflow=workflow, user=request.user)
