import json

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.decorators import action

from agents.admin import register_used_by
from core.admin_columns import badge_column, moment_column
from core.admin_mixins import AuditLinkAdminMixin, ServiceErrorsAdminMixin
from core.errors import Conflict
from core.roles import Role, has_role, user_role
from workflows import services
from workflows.admin_diff import version_diff_view, version_history
from workflows.agent_usage import workflows_using
from workflows.choices import WorkflowStatus
from workflows.graph import workflow_svg
from workflows.models import Workflow
from workflows.reading import definition_for_reading, legend, step_rows

# The agents admin page's "Used by": the workflows naming the agent (agents cannot import workflows).
register_used_by(workflows_using)


@admin.register(Workflow)
class WorkflowAdmin(AuditLinkAdminMixin, ServiceErrorsAdminMixin, SimpleHistoryAdmin, ModelAdmin):
    """Definitions are edited through the API (they are validated as a whole); the admin shows
    them, their versions and their history, deletes (softly, with an audit event) and reverts to an
    earlier state from the history: a new version through `workflow_update`, validated and audited."""

    list_display = ("name", "version", "status_shown", "updated_shown", "updated_by")
    list_filter = ("status",)
    status_shown = badge_column("status")
    updated_shown = moment_column("updated_at", "Updated")
    search_fields = ("name", "description")
    exclude = ("definition",)  # shown as the graph, the step table and the pretty JSON below
    readonly_fields = (
        "id",
        "name",
        "description",
        "version",
        "status_shown",
        "created_shown",
        "updated_shown",
        "deleted_shown",
        "created_by",
        "updated_by",
    )
    # Two to a row: the page's head stays short, the graph comes into view.
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("name", "status_shown"),
                    "description",
                    ("version", "id"),
                    ("created_shown", "created_by"),
                    ("updated_shown", "updated_by"),
                    "deleted_shown",
                )
            },
        ),
    )
    created_shown = moment_column("created_at", "Created")
    deleted_shown = moment_column("deleted_at", "Deleted")
    history_list_display = ("version", "status")
    # Below the fields: the graph, the step table and the definition (inside the page's form, which
    # has nothing to save); after the form: the versions and the form comparing two (a form of its own).
    change_form_after_template = "workflows/admin/workflow_sections.html"
    change_form_outer_after_template = "workflows/admin/version_history.html"
    actions_detail = ("execute_workflow",)

    class Media:
        css = {"all": ("workflows/workflow_admin.css",)}

    def has_add_permission(self, request):
        return False

    def get_fieldsets(self, request, obj=None):
        if obj is not None and getattr(obj, "deleted_at", None) is None:  # "Deleted: -" says nothing
            fields = tuple(field for field in self.fieldsets[0][1]["fields"] if field != "deleted_shown")
            return ((None, {"fields": fields}),)
        return super().get_fieldsets(request, obj)

    def get_urls(self):
        diff = self.admin_site.admin_view(lambda request, object_id: version_diff_view(self, request, object_id))
        return [path("<path:object_id>/diff/", diff, name="workflows_workflow_diff"), *super().get_urls()]

    def has_execute_permission(self, request, object_id=None):
        return has_role(user_role(request.user), Role.OPERATOR)  # as POST /workflows/{id}/execute

    @action(description="Execute", url_path="execute", permissions=["execute"], icon="play_arrow")
    def execute_workflow(self, request, object_id):
        # The form is the runs' (runs/admin_execute.py): a run is what it creates.
        return redirect(reverse("admin:runs_run_execute", args=[object_id]))

    def workflow_page(self, workflow) -> dict:
        """What the page's own sections show (workflows/templates/workflows/admin/)."""
        definition = workflow.definition
        return {
            # workflow_svg escapes every step id, name and label it writes, so its output is safe as is.
            "svg": mark_safe(workflow_svg(definition)),  # noqa: S308
            "legend": legend(),
            "rows": step_rows(definition),
            "definition_json": json.dumps(definition_for_reading(definition), indent=2, ensure_ascii=False),
            "history": version_history(workflow),
            "versions": list(workflow.versions.order_by("-version").values_list("version", flat=True)),
            "diff_url": reverse("admin:workflows_workflow_diff", args=[workflow.pk]),
        }

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

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if isinstance(obj, Workflow):  # not the history's revert page, whose obj is a historical state
            context["workflow_page"] = self.workflow_page(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

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
