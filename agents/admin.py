import json
from collections.abc import Callable

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db import models
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin

from agents import services
from agents.admin_forms import AgentForm
from agents.api.circuit import circuit_states
from agents.api.serializers import mask_auth_config
from agents.card import agent_check_health
from agents.models import Agent
from core.admin_columns import badge_column, moment_column
from core.admin_display import status_badge
from core.admin_mixins import AuditLinkAdminMixin, ServiceErrorsAdminMixin
from core.roles import Role, has_role, user_role

# Who uses an agent is known only to the layers above (workflows name agents by name): they register a
# function agent -> [(label, admin URL)] here, from their own admin module. Each must make one query.
USED_BY: list[Callable[[Agent], list[tuple[str, str]]]] = []


def register_used_by(source: Callable[[Agent], list[tuple[str, str]]]) -> None:
    if source not in USED_BY:
        USED_BY.append(source)


@admin.register(Agent)
class AgentAdmin(AuditLinkAdminMixin, ServiceErrorsAdminMixin, SimpleHistoryAdmin, ModelAdmin):
    """Saves and deletes go through the services, so the admin writes the audit trail too and
    deleting is the same soft delete as in the API."""

    list_display = (
        "name",
        "url",
        "status_shown",
        "auth_type",
        "timeout_ms",
        "max_concurrency",
        "breaker_state",
        "updated_shown",
    )
    list_filter = ("status", "auth_type")
    status_shown = badge_column("status")
    updated_shown = moment_column("updated_at", "Updated")
    search_fields = ("name", "url", "description")
    # Auth settings are edited by the form (agents/admin_forms.py, the secret write-only) and shown masked.
    readonly_fields = (
        "id",
        "created_at",
        "updated_at",
        "deleted_at",
        "created_by",
        "updated_by",
        "masked_auth_config",
        "circuit_state",
        "used_by",
    )
    form = AgentForm
    exclude = ("auth_config",)
    ordering = ("name",)
    history_list_display = ("status", "url", "timeout_ms", "max_concurrency")
    # Django 6's default for a URL typed without a scheme, chosen now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_changelist(self, request, **kwargs):
        return CircuitChangeList

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # "Check health" (a GET, as the API's): the same check as GET /agents/{id}/health, for viewers and up.
        extra = dict(extra_context or {})
        allowed = has_role(user_role(request.user), Role.VIEWER)
        extra["can_check_health"] = allowed
        if request.method == "GET" and "check_health" in request.GET and allowed:
            agent = self.get_object(request, object_id)
            if agent is not None:
                extra["health"] = health_shown(agent_check_health(agent=agent))
        return super().change_view(request, object_id, form_url, extra)

    @admin.display(description="Used by")
    def used_by(self, obj):
        if obj is None or obj._state.adding:
            return "-"
        links = [link for source in USED_BY for link in source(obj)]
        if not links:
            return "No workflow uses this agent."
        return format_html(
            "<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a></li>', ((u, t) for t, u in links))
        )

    @admin.display(description="Circuit breaker")
    def breaker_state(self, obj):
        view = getattr(obj, "circuit_view", None) or circuit_states([obj])[obj.pk]
        return status_badge(view["state"])

    @admin.display(description="Circuit breaker state")
    def circuit_state(self, obj):
        if obj is None or obj._state.adding:
            return "-"
        view = circuit_states([obj])[obj.pk]
        parts = [view["state"].replace("_", "-")]
        if view["opened_at"]:
            parts.append(f"opened at {view['opened_at']}")
        if view["retry_at"]:
            parts.append(f"trial at {view['retry_at']}")
        parts.append(f"{view['consecutive_failures']} failures in a row")
        parts.append(f"{view['recent_failures']} of {view['recent_calls']} calls failed in the window")
        if view["last_error"]:
            parts.append(f"last error: {view['last_error']}")
        return "; ".join(parts)

    @admin.display(description="Stored auth settings (secrets masked)")
    def masked_auth_config(self, obj):
        return mask_auth_config(obj.auth_config)

    def save_model(self, request, obj, form, change):
        auth = {"auth_type", "header_name", "secret"}
        if change:
            current = Agent.objects.get(pk=obj.pk)
            data = {field: form.cleaned_data[field] for field in form.changed_data if field in form.cleaned_data}
            data = {field: value for field, value in data.items() if field not in auth}
            if form.auth_config is not None:  # a stored secret comes back as the mask: the service keeps it
                data.update(auth_type=form.cleaned_data["auth_type"], auth_config=form.auth_config)
            saved = services.agent_update(agent=current, user=request.user, data=data)
        else:
            fields = {name: value for name, value in form.cleaned_data.items() if name not in auth}
            fields.update(auth_type=form.cleaned_data["auth_type"], auth_config=form.auth_config or {})
            saved = services.agent_create(user=request.user, data=fields)
        obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request, obj):
        services.agent_delete(agent=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for agent in queryset.live():
            services.agent_delete(agent=agent, user=request.user)


class CircuitChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        # One read of the store for the page, not one per row.
        views = circuit_states(self.result_list)
        for agent in self.result_list:
            agent.circuit_view = views[agent.pk]


def health_shown(report: dict) -> dict:
    """The health report as the change page shows it: the card pretty-printed."""
    card = report["card"]
    return {**report, "card_json": json.dumps(card, indent=2, sort_keys=True) if card is not None else ""}
