from django.contrib import admin, messages
from django.db import models
from unfold.admin import ModelAdmin, TabularInline

from core.admin_columns import badge_column, duration_column, flag_badge, moment_column
from core.admin_mixins import AuditLinkAdminMixin, ReadOnlyAdminMixin, ServiceErrorsAdminMixin
from core.errors import DomainError
from core.roles import Role, has_role, user_role
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, WebhookEndpoint

EDITABLE = ("url", "description", "event_types", "workflow_id", "active")


class AdminRoleOnly:
    """Webhooks are the admin role's, in the admin as in the API, whatever model permissions say."""

    def _allowed(self, request) -> bool:
        return has_role(user_role(request.user), Role.ADMIN)

    def has_module_permission(self, request):
        return self._allowed(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return self._allowed(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request) and super().has_delete_permission(request, obj)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditLinkAdminMixin, AdminRoleOnly, ServiceErrorsAdminMixin, ModelAdmin):
    """Saves, deletes and rotations go through the services (checks, audit trail); the secret is shown
    once, in the message after creating or rotating, and never on the page."""

    list_display = ("url", "state", "event_types", "workflow_id", "updated_shown")
    list_filter = ("active",)
    search_fields = ("url", "description")
    audit_resource_type = "webhook"  # the name its services write
    updated_shown = moment_column("updated_at", "Updated")

    @admin.display(description="Active", ordering="active")
    def state(self, obj):
        return flag_badge(obj.active, "active", "inactive")

    fields = (*EDITABLE, "disabled_reason", "id", "created_at", "updated_at", "created_by", "updated_by")
    readonly_fields = ("disabled_reason", "id", "created_at", "updated_at", "created_by", "updated_by")
    ordering = ("-created_at",)
    actions = ("rotate_secrets", "send_pings")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        return super().get_queryset(request).live()

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in EDITABLE if field in form.cleaned_data}
        if change:
            current = WebhookEndpoint.objects.get(pk=obj.pk)
            changed = {field: value for field, value in data.items() if field in form.changed_data}
            saved = services.webhook_update(endpoint=current, user=request.user, data=changed)
        else:
            saved = services.webhook_create(user=request.user, data=data)
            self.message_user(request, f"Signing secret (shown once, store it now): {saved.secret}", messages.WARNING)
        obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request, obj):
        services.webhook_delete(endpoint=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset.live():
            services.webhook_delete(endpoint=endpoint, user=request.user)

    @admin.action(description="Rotate the secrets of the selected webhooks")
    def rotate_secrets(self, request, queryset):
        for endpoint in queryset:
            endpoint = services.webhook_rotate_secret(endpoint=endpoint, user=request.user)
            self.message_user(request, f"{endpoint.url}: new secret (shown once): {endpoint.secret}", messages.WARNING)

    @admin.action(description="Send a test ping to the selected webhooks")
    def send_pings(self, request, queryset):
        for endpoint in queryset:
            services.webhook_test(endpoint=endpoint, user=request.user)
        self.message_user(request, f"Ping queued for {queryset.count()} webhook(s); see Deliveries.", messages.SUCCESS)


class AttemptInline(ReadOnlyAdminMixin, TabularInline):
    model = DeliveryAttempt
    fields = ("number", "attempted_shown", "status_code", "took", "error", "response_body")
    readonly_fields = fields
    attempted_shown = moment_column("attempted_at", "Attempted")
    took = duration_column("duration_ms", "Duration")
    ordering = ("number",)
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(AuditLinkAdminMixin, AdminRoleOnly, ReadOnlyAdminMixin, ModelAdmin):
    """What was sent where and how it went; redelivery goes through the same service as the API."""

    list_display = (
        "id",
        "endpoint",
        "event_type",
        "status_shown",
        "attempt_count",
        "last_status_code",
        "created_shown",
    )
    list_filter = ("status", "event_type")
    list_select_related = ("endpoint",)
    audit_resource_type = "webhook_delivery"
    status_shown = badge_column("status")
    created_shown = moment_column("created_at", "Created")
    search_fields = ("=id", "=run_id", "endpoint__url")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = (AttemptInline,)
    actions = ("redeliver",)

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver(self, request, queryset):
        done = 0
        for delivery in queryset:
            try:
                services.delivery_redeliver(delivery=delivery, user=request.user)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{delivery.pk}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"Redelivery queued for {done} delivery(ies).", messages.SUCCESS)
