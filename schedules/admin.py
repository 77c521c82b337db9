from zoneinfo import ZoneInfo

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html_join
from unfold.admin import ModelAdmin

from core.admin_columns import flag_badge, moment_column
from core.admin_mixins import AuditLinkAdminMixin, ReadOnlyAdminMixin, ServiceErrorsAdminMixin
from schedules import services
from schedules.cron import cron_problem, next_times, timezone_problem
from schedules.models import Schedule, ScheduleFire

EDITABLE = ("name", "workflow", "cron", "timezone", "input_data", "active")


@admin.register(Schedule)
class ScheduleAdmin(AuditLinkAdminMixin, ServiceErrorsAdminMixin, ModelAdmin):
    """Saves and deletes go through the services (checks, audit trail); the page shows the next due times."""

    list_display = ("name", "workflow", "cron", "timezone", "state", "next_shown", "last_shown", "last_error")
    list_filter = ("active", "timezone")
    list_select_related = ("workflow",)
    next_shown = moment_column("next_run_at", "Next run")
    last_shown = moment_column("last_run_at", "Last run")

    @admin.display(description="Active", ordering="active")
    def state(self, obj):
        return flag_badge(obj.active, "active", "inactive")

    search_fields = ("name", "cron", "workflow__name")
    fields = (*EDITABLE, "upcoming", "next_run_at", "last_run_at", "last_run", "last_error", "id", "created_at")
    readonly_fields = ("upcoming", "next_run_at", "last_run_at", "last_run", "last_error", "id", "created_at")
    raw_id_fields = ("workflow",)
    ordering = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).live()

    @admin.display(description="Next 5 due times")
    def upcoming(self, obj):
        if obj.pk is None or cron_problem(obj.cron) or timezone_problem(obj.timezone):
            return "-"
        zone = ZoneInfo(obj.timezone)
        rows = (
            (t.strftime("%Y-%m-%d %H:%M UTC"), t.astimezone(zone).strftime(f"%Y-%m-%d %H:%M %Z, {obj.timezone}"))
            for t in next_times(obj.cron, obj.timezone, timezone.now(), 5)
        )
        return format_html_join("", "<div>{} <small>({})</small></div>", rows)

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in EDITABLE if field in form.cleaned_data}
        if "workflow" in data:
            data["workflow_id"] = data.pop("workflow").pk
        if change:
            current = Schedule.objects.get(pk=obj.pk)
            changed = {k: v for k, v in data.items() if (k if k != "workflow_id" else "workflow") in form.changed_data}
            saved = services.schedule_update(schedule=current, user=request.user, data=changed)
        else:
            saved = services.schedule_create(user=request.user, data=data)
        obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request, obj):
        services.schedule_delete(schedule=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for schedule in queryset.live():
            services.schedule_delete(schedule=schedule, user=request.user)


@admin.register(ScheduleFire)
class ScheduleFireAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Each due time that was started, with its run (or why none started)."""

    list_display = ("schedule", "due_shown", "fired_shown", "run", "missed", "error")
    list_select_related = ("schedule", "run")
    due_shown = moment_column("due_at", "Due")
    fired_shown = moment_column("fired_at", "Fired")
    search_fields = ("schedule__name", "=run__id")
    readonly_fields = [f.name for f in ScheduleFire._meta.fields]
