from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import path
from rest_framework_api_key.models import APIKey as LibraryApiKey
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from audit.services import audit_record
from core.admin_columns import moment_column
from core.admin_display import status_badge
from core.admin_keys import api_key_add_view, api_key_revoke_view, may_manage_keys
from core.admin_mixins import MASK, AuditedAdminMixin, AuditLinkAdminMixin, ReadOnlyAdminMixin
from core.models import ApiKey, OutboxMessage
from core.services import api_key_revoke

# The library's own key model is unused (ours has a UUID id, a user and a role).
if admin.site.is_registered(LibraryApiKey):
    admin.site.unregister(LibraryApiKey)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditLinkAdminMixin, ModelAdmin):
    """Created (core/admin_keys.py: the raw key shown once), read and revoked, for the admin role, through
    the services as in the API. Revoking is one-way (the flag is not a field of the form) and keys are
    never deleted, in the admin as in the API: the row stays for the record."""

    list_display = ("name", "prefix", "user", "role", "created_shown", "expiry_shown", "used_shown", "state")
    list_filter = ("role", "revoked")
    list_select_related = ("user",)
    audit_resource_type = "api_key"
    created_shown = moment_column("created_at", "Created")
    expiry_shown = moment_column("expiry_date", "Expires")
    used_shown = moment_column("last_used_at", "Last used")
    change_form_outer_before_template = "admin/core/apikey/revoke_button.html"  # outside the page's form
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

    @admin.display(description="State", ordering="revoked")
    def state(self, obj):
        if obj.revoked:
            return status_badge("revoked")
        if obj.has_expired:
            return status_badge("expired")
        return status_badge("active")

    def has_module_permission(self, request):
        return may_manage_keys(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return may_manage_keys(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return may_manage_keys(request)

    def has_change_permission(self, request, obj=None):
        return False  # the page shows the key; revoking is the one write

    def get_urls(self):
        add = self.admin_site.admin_view(lambda request: api_key_add_view(self, request))
        revoke = self.admin_site.admin_view(lambda request, object_id: api_key_revoke_view(self, request, object_id))
        return [
            path("add/", add, name="core_apikey_add"),
            path("<path:object_id>/revoke/", revoke, name="core_apikey_revoke"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        can_revoke = obj is not None and not obj.revoked and may_manage_keys(request)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "can_revoke": can_revoke})

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        if not may_manage_keys(request):
            self.message_user(request, "Your role does not allow revoking keys.", messages.ERROR)
            return
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
        "state",
        "created_shown",
        "sent_shown",
        "attempts",
        "next_shown",
        "last_error",
    )
    created_shown = moment_column("created_at", "Created")
    sent_shown = moment_column("sent_at", "Sent")
    next_shown = moment_column("next_attempt_at", "Next attempt")
    list_filter = ("topic", ("sent_at", admin.EmptyFieldListFilter), ("dead_at", admin.EmptyFieldListFilter))
    search_fields = ("=key",)
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    @admin.display(description="State")
    def state(self, obj):
        return status_badge("dead" if obj.dead_at else "sent" if obj.sent_at else "pending")


# Users and groups have no services of their own: the admin writes them, and audits each write.
User = get_user_model()
for model in (User, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class UserAdmin(AuditLinkAdminMixin, AuditedAdminMixin, auth_admin.UserAdmin, ModelAdmin):
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
class GroupAdmin(AuditLinkAdminMixin, AuditedAdminMixin, auth_admin.GroupAdmin, ModelAdmin):
    pass
