import json

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin, TabularInline

from agents.admin import register_used_by
from core.admin_mixins import ServiceErrorsAdminMixin
from core.errors import Conflict
from workflows import services
from workflows.agent_usage import workflows_using
from workflows.choices import WorkflowStatus
from workflows.graph import definition_for_reading, step_rows, workflow_svg
from workflows.models import Workflow, WorkflowVersion

# The agents admin page's "Used by": the workflows naming the agent (agents cannot import workflows).
register_used_by(workflows_using)


class VersionInline(TabularInline):
    model = WorkflowVersion
    fields = ("version", "created_at", "created_by", "definition")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Workflow)
class WorkflowAdmin(ServiceErrorsAdminMixin, SimpleHistoryAdmin, ModelAdmin):
    """Definitions are edited through the API (they are validated as a whole); the admin shows
    them, their versions and their history, deletes (softly, with an audit event) and reverts to an
    earlier state from the history: a new version through `workflow_update`, validated and audited."""

    list_display = ("name", "version", "status", "updated_at", "updated_by")
    list_filter = ("status",)
    search_fields = ("name", "description")
    exclude = ("definition",)  # shown as the graph, the step table and the pretty JSON below
    readonly_fields = (
        "id",
        "name",
        "description",
        "version",
        "status",
        "graph",
        "step_table",
        "definition_pretty",
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

    @admin.display(description="Step graph")
    def graph(self, obj):
        # workflow_svg escapes every step id, name and label it writes, so its output is safe as is.
        return mark_safe(  # noqa: S308
            f'<div class="workflow-graph" style="overflow:auto;max-width:100%">{workflow_svg(obj.definition)}</div>'
        )

    @admin.display(description="Steps")
    def step_table(self, obj):
        return render_to_string("workflows/admin/step_table.html", {"rows": step_rows(obj.definition)})

    @admin.display(description="Definition")
    def definition_pretty(self, obj):
        text = json.dumps(definition_for_reading(obj.definition), indent=2, ensure_ascii=False)
        return format_html('<pre class="workflow-definition" style="white-space:pre;overflow:auto">{}</pre>', text)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: a Save button would promise an edit the page cannot make. Delete
        # stays (soft, through the service), and the history's Revert keeps its own button.
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

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
