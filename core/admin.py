from django.contrib import admin
from rest_framework_api_key.models import APIKey as LibraryApiKey

from core.admin_mixins import ReadOnlyAdminMixin
from core.models import ApiKey, OutboxMessage
from core.services import api_key_revoke

# The library's own key model is unused (ours has a UUID id, a user and a role).
if admin.site.is_registered(LibraryApiKey):
    admin.site.unregister(LibraryApiKey)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Read and revoke only: keys are created through the API or `manage.py create_api_key`,
    which show the secret once."""

    list_display = ("name", "prefix", "user", "role", "created_at", "expiry_date", "last_used_at", "revoked")
    list_filter = ("role", "revoked")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = (
        "id",
        "name",
        "prefix",
        "user",
        "role",
        "created_at",
        "created_by",
        "expiry_date",
        "last_used_at",
        "revoked_at",
    )
    exclude = ("hashed_key",)
    actions = ["revoke_keys"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        keys = list(queryset.filter(revoked=False))
        for api_key in keys:
            api_key_revoke(api_key=api_key, user=request.user)
        self.message_user(request, f"Revoked {len(keys)} key(s).")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What waits to go to Kafka (pending) and what went (kept a day): the first place to look when
    runs stay PENDING."""

    list_display = (
        "id",
        "topic",
        "key",
        "created_at",
        "sent_at",
        "attempts",
        "next_attempt_at",
        "dead_at",
        "last_error",
    )
    list_filter = ("topic", ("sent_at", admin.EmptyFieldListFilter), ("dead_at", admin.EmptyFieldListFilter))
    search_fields = ("=key",)
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
