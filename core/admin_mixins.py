from django.contrib import messages
from django.http import HttpResponseRedirect

from core.errors import DomainError


class ReadOnlyAdminMixin:
    """Rows written only by the system (runs, logs, outbox): the admin shows them, never edits them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceErrorsAdminMixin:
    """Admin pages whose saves and deletes go through the services: a domain error (a name taken by
    a concurrent request, a state that changed meanwhile) is shown as a message on the page instead
    of a server error. The page's transaction is rolled back first, so nothing is half-written."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
