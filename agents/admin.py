from django.contrib import admin

from agents.api.serializers import mask_auth_config
from agents.models import Agent


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "status", "auth_type", "timeout_ms", "updated_at")
    list_filter = ("status", "auth_type")
    search_fields = ("name", "url", "description")
    readonly_fields = ("id", "created_at", "updated_at", "deleted_at", "created_by", "updated_by", "masked_auth_config")
    exclude = ("auth_config",)
    ordering = ("name",)

    @admin.display(description="Auth config")
    def masked_auth_config(self, obj):
        return mask_auth_config(obj.auth_config)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
        obj.updated_by = request.user.get_username()
        super().save_model(request, obj, form, change)
