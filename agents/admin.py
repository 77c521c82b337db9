from django.contrib import admin
from django.db import models
from simple_history.admin import SimpleHistoryAdmin

from agents import services
from agents.api.serializers import mask_auth_config
from agents.models import Agent
from core.admin_mixins import ServiceErrorsAdminMixin


@admin.register(Agent)
class AgentAdmin(ServiceErrorsAdminMixin, SimpleHistoryAdmin):
    """Saves and deletes go through the services, so the admin writes the audit trail too and
    deleting is the same soft delete as in the API."""

    list_display = ("name", "url", "status", "auth_type", "timeout_ms", "max_concurrency", "updated_at")
    list_filter = ("status", "auth_type")
    search_fields = ("name", "url", "description")
    # Auth settings hold secrets and are validated as a whole: the API edits them, the admin shows them.
    readonly_fields = (
        "id",
        "created_at",
        "updated_at",
        "deleted_at",
        "created_by",
        "updated_by",
        "auth_type",
        "masked_auth_config",
    )
    exclude = ("auth_config",)
    ordering = ("name",)
    history_list_display = ("status", "url", "timeout_ms", "max_concurrency")
    # Django 6's default for a URL typed without a scheme, chosen now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="Auth config")
    def masked_auth_config(self, obj):
        return mask_auth_config(obj.auth_config)

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in form.changed_data if field in form.cleaned_data}
        if change:
            current = Agent.objects.get(pk=obj.pk)
            saved = services.agent_update(agent=current, user=request.user, data=data)
        else:
            saved = services.agent_create(user=request.user, data=form.cleaned_data)
        obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request, obj):
        services.agent_delete(agent=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for agent in queryset.live():
            services.agent_delete(agent=agent, user=request.user)
