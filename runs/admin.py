from django.contrib import admin, messages
from django.urls import path
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from core.admin_columns import badge_column, duration_column, moment_column
from core.admin_display import duration_text
from core.admin_mixins import AuditLinkAdminMixin, ReadOnlyAdminMixin
from core.admin_paging import BigListAdminMixin, choices_filter
from core.errors import DomainError
from core.roles import Role, has_role, user_role
from runs import services
from runs.admin_actions import run_action_view, run_actions_context
from runs.admin_execute import execute_url
from runs.admin_respond import WaitingFilter, answer_link, question, respond_view
from runs.admin_run_page import run_live_view, run_page_context
from runs.events import EVENT_TYPES
from runs.models import Event, IdempotencyKey, Run, StepExecution
from workflows.definition.validation import STEP_TYPES


@admin.register(Run)
class RunAdmin(AuditLinkAdminMixin, BigListAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Runs as the executor records them; cancel and retry go through the same services as the API."""

    list_display = (
        "id",
        "workflow_name",
        "workflow_version",
        "status_shown",
        "attempt",
        "triggered_by",
        "created_shown",
        "took",
    )
    status_shown = badge_column("status")
    created_shown = moment_column("created_at", "Created")
    # "created_at": today, the past 7 days... (no query); a date_hierarchy would read every run's date.
    list_filter = ("status", WaitingFilter, "created_at")
    search_fields = ("=id", "workflow_name", "triggered_by")
    readonly_fields = [f.name for f in Run._meta.fields if f.name != "plan"] + [
        "created_moment",
        "updated_moment",
        "started_moment",
        "completed_moment",
        "cancelled_moment",
        "lease_moment",
    ]
    # The page's times, to the millisecond with how long ago (the fields themselves read "5:58 a.m.").
    created_moment = moment_column("created_at", "Created at")
    updated_moment = moment_column("updated_at", "Updated at")
    started_moment = moment_column("started_at", "Started at")
    completed_moment = moment_column("completed_at", "Completed at")
    cancelled_moment = moment_column("cancelled_at", "Cancelled at")
    lease_moment = moment_column("lease_expires_at", "Lease expires at")
    # Status, error, input and output are at the top of the page (change_form.html); the rest here.
    fieldsets = (
        (
            "Details",
            {
                "fields": (
                    ("id", "workflow"),
                    ("workflow_name", "workflow_version"),
                    ("triggered_by", "rerun_of"),
                    ("created_moment", "updated_moment"),
                    ("started_moment", "completed_moment"),
                    ("cancelled_moment", "cancelled_by"),
                    ("lease_moment", "recoveries"),
                    "waiting_for_input",
                )
            },
        ),
    )
    actions = ("cancel_runs", "retry_runs")

    class Media:
        css = {"all": ("runs/run_page.css",)}

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        # The change page's buttons (runs/admin_actions.py): POSTs through the services.
        act = self.admin_site.admin_view(
            lambda request, object_id, name: run_action_view(self, request, object_id, name)
        )
        # The page's live part (runs/admin_run_page.py), polled by htmx while the run is active.
        live = self.admin_site.admin_view(lambda request, object_id: run_live_view(self, request, object_id))
        return [
            path("<path:object_id>/act/<str:name>/", act, name="runs_run_action"),
            path("<path:object_id>/live/", live, name="runs_run_live"),
            execute_url(self),  # a workflow's Execute form (runs/admin_execute.py)
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if run is not None:
            extra.update(run_actions_context(request, run), **run_page_context(request, run))
        return super().change_view(request, object_id, form_url, extra)

    def _apply(self, request, queryset, action, verb: str) -> None:
        # Same rule as the API: operators and above may cancel and retry.
        if not has_role(user_role(request.user), Role.OPERATOR):
            self.message_user(request, f"Your role does not allow {verb}.", messages.ERROR)
            return
        done, refused = 0, []
        for run in queryset:
            try:
                action(run=run, user=request.user)
                done += 1
            except DomainError as exc:
                refused.append(f"{run.id}: {exc.message}")
        if done:
            self.message_user(request, f"{verb.capitalize()}: {done} run(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)

    @admin.display(description="Took")
    def took(self, obj):
        if obj.started_at is None:
            return "-"
        return duration_text((obj.completed_at or obj.cancelled_at or obj.updated_at) - obj.started_at)

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        self._apply(request, queryset, services.run_cancel, "cancel")

    @admin.action(description="Retry the selected runs (failed or cancelled)")
    def retry_runs(self, request, queryset):
        self._apply(request, queryset, services.run_retry, "retry")


@admin.register(StepExecution)
class StepExecutionAdmin(BigListAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = (
        "step_id",
        "scope",
        "run",
        "step_type",
        "agent_name",
        "status_shown",
        "attempt",
        "try_number",
        "started_shown",
        "duration_shown",
    )
    # By workflow: the dashboard's "slowest steps" link here (run__workflow__id__exact=...).
    list_filter = ("status", choices_filter("step_type", STEP_TYPES, "step type"), "run__workflow")
    list_select_related = ("run",)
    ordering = ("-created_at", "-id")  # newest first, along step_created_idx
    status_shown = badge_column("status")
    started_shown = moment_column("started_at", "Started")
    duration_shown = duration_column("duration_ms", "Duration")
    search_fields = ("=run__id", "step_id", "agent_name", "=correlation_id")
    readonly_fields = [*(f.name for f in StepExecution._meta.fields if f.name != "input_request"), "question", "answer"]

    exclude = ("input_request",)  # shown as "question": without the answer kept for sending again

    @admin.display(description="Input request")
    def question(self, obj):
        return question(obj)

    @admin.display(description="Answer")
    def answer(self, obj):
        link = answer_link(obj)
        return format_html('<a href="{}">Answer the agent</a>', link) if link else ""

    def get_urls(self):
        # A waiting step (INPUT_REQUIRED) is answered on a page of its own, through the API's service.
        respond = self.admin_site.admin_view(lambda request, object_id: respond_view(self, request, object_id))
        return [path("<path:object_id>/respond/", respond, name="runs_stepexecution_respond"), *super().get_urls()]


@admin.register(Event)
class EventAdmin(BigListAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    """What happened when: every run and step status change, in order (webhooks and live events read it)."""

    list_display = ("id", "type", "run", "step_execution_id", "created_shown")
    list_filter = (choices_filter("type", EVENT_TYPES),)
    search_fields = ("=run__id", "=step_execution_id")
    list_select_related = ("run",)
    created_shown = moment_column("created_at", "Created")
    readonly_fields = [f.name for f in Event._meta.fields]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Execute's Idempotency-Keys and the runs they answer with (purged after IDEMPOTENCY_TTL_HOURS)."""

    list_display = ("key", "user", "run", "status_code", "created_shown")
    list_select_related = ("user", "run")
    created_shown = moment_column("created_at", "Created")
    search_fields = ("=key", "user__username", "=run__id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in IdempotencyKey._meta.fields]
