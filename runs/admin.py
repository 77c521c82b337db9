from django.contrib import admin, messages
from django.urls import path
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline

from core.admin_mixins import ReadOnlyAdminMixin
from core.errors import DomainError
from core.roles import Role, has_role, user_role
from runs import services
from runs.admin_actions import run_action_view, run_actions_context
from runs.admin_respond import WaitingFilter, answer_link, question, respond_view
from runs.models import Event, IdempotencyKey, Run, RunLog, StepExecution

# What a row of step executions shows, in the run page and the step executions list.
STEP_COLUMNS = ("step_id", "step_type", "agent_name", "status", "attempt", "try_number", "started_at", "duration_ms")


class StepInline(ReadOnlyAdminMixin, TabularInline):
    """The run's top-level steps and blocks; what ran inside a block (a loop's thousands of iterations)
    is listed on the step executions page, filtered by run."""

    model = StepExecution
    fields = (*STEP_COLUMNS, "error_message", "question", "answer")
    readonly_fields = fields
    ordering = ("created_at", "id")
    extra = 0
    show_change_link = True
    verbose_name_plural = "Steps (top level; blocks' children under Step executions)"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(parent__isnull=True)

    @admin.display(description="Input request")
    def question(self, obj):
        return question(obj)

    @admin.display(description="Answer")
    def answer(self, obj):
        link = answer_link(obj)
        return format_html('<a href="{}">Answer the agent</a>', link) if link else ""


class LogInline(ReadOnlyAdminMixin, TabularInline):
    model = RunLog
    fields = ("timestamp", "level", "source", "step_id", "message")
    readonly_fields = fields
    ordering = ("timestamp", "id")
    extra = 0


@admin.register(Run)
class RunAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Runs as the executor records them; cancel and retry go through the same services as the API."""

    list_display = ("id", "workflow_name", "workflow_version", "status", "attempt", "triggered_by", "created_at")
    list_filter = ("status", WaitingFilter, "created_at")
    search_fields = ("=id", "workflow_name", "triggered_by")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Run._meta.fields if f.name != "plan"]
    exclude = ("plan",)
    inlines = (StepInline, LogInline)
    actions = ("cancel_runs", "retry_runs")

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        # The change page's buttons (runs/admin_actions.py): POSTs through the services.
        act = self.admin_site.admin_view(
            lambda request, object_id, name: run_action_view(self, request, object_id, name)
        )
        return [path("<path:object_id>/act/<str:name>/", act, name="runs_run_action"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {**(extra_context or {}), **run_actions_context(request, self.get_object(request, object_id))}
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

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        self._apply(request, queryset, services.run_cancel, "cancel")

    @admin.action(description="Retry the selected runs (failed or cancelled)")
    def retry_runs(self, request, queryset):
        self._apply(request, queryset, services.run_retry, "retry")


@admin.register(StepExecution)
class StepExecutionAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("step_id", "scope", "run", *STEP_COLUMNS[1:])
    list_filter = ("status", "step_type")
    list_select_related = ("run",)
    search_fields = ("=run__id", "step_id", "agent_name", "=correlation_id")
    readonly_fields = [*(f.name for f in StepExecution._meta.fields if f.name != "input_request"), "question", "answer"]

    exclude = ("input_request",)  # shown as "question": without the answer kept for sending again
    question, answer = StepInline.question, StepInline.answer

    def get_urls(self):
        # A waiting step (INPUT_REQUIRED) is answered on a page of its own, through the API's service.
        respond = self.admin_site.admin_view(lambda request, object_id: respond_view(self, request, object_id))
        return [path("<path:object_id>/respond/", respond, name="runs_stepexecution_respond"), *super().get_urls()]


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """What happened when: every run and step status change, in order (webhooks and live events read it)."""

    list_display = ("id", "type", "run", "step_execution_id", "created_at")
    list_filter = ("type",)
    search_fields = ("=run__id", "=step_execution_id")
    list_select_related = ("run",)
    readonly_fields = [f.name for f in Event._meta.fields]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Execute's Idempotency-Keys and the runs they answer with (purged after IDEMPOTENCY_TTL_HOURS)."""

    list_display = ("key", "user", "run", "status_code", "created_at")
    list_select_related = ("user", "run")
    search_fields = ("=key", "user__username", "=run__id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in IdempotencyKey._meta.fields]
