from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework_api_key.models import APIKey as LibraryApiKey
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from audit.services import audit_record
from core.admin_mixins import MASK, AuditedAdminMixin, ReadOnlyAdminMixin
from core.models import ApiKey, OutboxMessage
from core.services import api_key_revoke

# The library's own key model is unused (ours has a UUID id, a user and a role).
if admin.site.is_registered(LibraryApiKey):
    admin.site.unregister(LibraryApiKey)


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    """Read and revoke only: keys are created through the API or `manage.py create_api_key`,
    which show the secret once. Revoking is one-way (the flag is not a field of the form) and keys are
    never deleted, in the admin as in the API: the row stays for the record."""

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
        "revoked",
        "revoked_at",
    )
    exclude = ("hashed_key",)
    actions = ["revoke_keys"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the page shows the key; the revoke action is the one write

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        keys = list(queryset.filter(revoked=False))
        for api_key in keys:
            api_key_revoke(api_key=api_key, user=request.user)
        self.message_user(request, f"Revoked {len(keys)} key(s).")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, ModelAdmin):
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


# Users and groups have no services of their own: the admin writes them, and audits each write.
User = get_user_model()
for model in (User, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class UserAdmin(AuditedAdminMixin, auth_admin.UserAdmin, ModelAdmin):
    # The theme's versions of the stock forms (same fields and checks, its widgets).
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm

    def user_change_password(self, request, id, form_url=""):
        # This page saves its form itself, not through save_model: audit it when it saved (it then
        # redirects to the user's page), in the same transaction.
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            saved = request.method == "POST" and response.status_code == 302
            if saved and response.url != request.get_full_path():
                audit_record(
                    user=request.user,
                    action="user.password_change",
                    resource_type="user",
                    resource_id=unquote(id),
                    changes={"password": [MASK, MASK]},
                )
        return response


@admin.register(Group)
class GroupAdmin(AuditedAdminMixin, auth_admin.GroupAdmin, ModelAdmin):
    pass
