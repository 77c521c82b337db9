from django.contrib import messages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from audit.services import audit_record
from core.errors import DomainError

MASK = "********"


class ReadOnlyAdminMixin:
    """Rows written only by the system (runs, logs, outbox): the admin shows them, never edits them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def audit_list_url(resource_type: str, resource_id) -> str:
    """The audit list filtered to one object (the trail names objects by type and id, not by key)."""
    query = urlencode({"resource_type__exact": resource_type, "resource_id__exact": str(resource_id)})
    return f"{reverse('admin:audit_auditevent_changelist')}?{query}"


class AuditLinkAdminMixin:
    """Every object page links "History / audit" to the audit events of that object (shown beside the
    theme's History link by templates/admin/change_form_object_tools.html). `audit_resource_type` is the
    name the services write (a webhook endpoint is "webhook"); by default the model's name."""

    audit_resource_type: str | None = None

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None:
            kind = self.audit_resource_type or self.model._meta.model_name
            context["audit_url"] = audit_list_url(kind, obj.pk)
        return super().render_change_form(request, context, add, change, form_url, obj)


class ServiceErrorsAdminMixin:
    """Admin pages whose saves and deletes go through the services: a domain error (a name taken by
    a concurrent request, a state that changed meanwhile) is shown as a message on the page instead
    of a server error. The page's transaction is rolled back first, so nothing is half-written."""

    def shown_as_message(self, request, view, *args):
        try:
            return view(request, *args)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return self.shown_as_message(request, super().changeform_view, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        return self.shown_as_message(request, super().delete_view, object_id, extra_context)


def _plain(value):
    """A form value as the audit trail stores it (JSON)."""
    if isinstance(value, (QuerySet, list, tuple, set)):
        return sorted(str(item) for item in value)
    if value is None or isinstance(value, (bool, int, float, str, dict)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value.pk) if isinstance(value, Model) else str(value)


def form_changes(form, *, change: bool) -> dict:
    """{field: [old, new]} of what the admin form changed; password fields masked."""
    changes = {}
    for name in form.changed_data:
        old = _plain(form.initial.get(name)) if change else None
        new = _plain(form.cleaned_data.get(name))
        if "password" in name:
            old, new = (MASK if change else None), MASK
        changes[name] = [old, new]
    return changes


class AuditedAdminMixin:
    """For models the admin writes directly, having no services of their own (users, groups): every save
    and delete writes an audit event in the same transaction, as the API's services do:
    `<model>.create|update|delete` with the changed fields as {field: [old, new]}, passwords masked.
    Models with services (agents, workflows, webhooks) call them instead, and those audit."""

    def admin_audit(self, request, obj, verb: str, changes: dict) -> None:
        name = self.model._meta.model_name
        audit_record(
            user=request.user, action=f"{name}.{verb}", resource_type=name, resource_id=obj.pk, changes=changes
        )

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            self.admin_audit(request, obj, "update" if change else "create", form_changes(form, change=change))

    def delete_model(self, request, obj):
        with transaction.atomic():
            self.admin_audit(request, obj, "delete", {"object": [str(obj), None]})
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self.admin_audit(request, obj, "delete", {"object": [str(obj), None]})
            super().delete_queryset(request, queryset)
