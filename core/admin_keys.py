"""Creating and revoking API keys on the admin's pages, through core/services.py, for the admin role.

The raw key is shown once: in the response to the create form's POST itself (no redirect, no
message kept in the session, `Cache-Control: no-store`), so it is never stored anywhere but in that
one page the creator sees. Reloading that page would send the form again (the browser asks first)."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from core.errors import DomainError
from core.models import ApiKey
from core.roles import Role, has_role, user_role
from core.services import api_key_create, api_key_revoke


def may_manage_keys(request) -> bool:
    """The API's rule (read_role = write_role = admin), whatever model permissions say."""
    return has_role(user_role(request.user), Role.ADMIN)


class DateTimeLocalInput(UnfoldAdminTextInputWidget):
    input_type = "datetime-local"  # the browser's own picker; no admin calendar script to load


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=50, widget=UnfoldAdminTextInputWidget)
    role = forms.ChoiceField(choices=Role.choices, widget=UnfoldAdminSelectWidget)
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        widget=UnfoldAdminSelectWidget,
        help_text="Whose key it is (the key acts as this user, with the role above). Empty: yours.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=DateTimeLocalInput,
        help_text="UTC. Empty: the key never expires.",
    )

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return value


def _page(model_admin, request, template: str, context: dict):
    return TemplateResponse(
        request,
        template,
        {**model_admin.admin_site.each_context(request), "opts": ApiKey._meta, **context},
    )


def api_key_add_view(model_admin, request):
    if not may_manage_keys(request):
        raise PermissionDenied
    form = ApiKeyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        api_key, raw = api_key_create(
            user=data["user"] or request.user,
            role=Role(data["role"]),
            name=data["name"],
            expires_at=data["expires_at"],
            created_by=request.user,
        )
        response = _page(
            model_admin,
            request,
            "admin/core/apikey/created.html",
            {"title": "API key created", "api_key": api_key, "raw_key": raw},
        )
        add_never_cache_headers(response)  # the page holds the secret: no cache keeps a copy
        return response
    return _page(model_admin, request, "admin/core/apikey/add.html", {"title": "Create an API key", "form": form})


def api_key_revoke_view(model_admin, request, object_id):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not may_manage_keys(request):
        raise PermissionDenied
    api_key = get_object_or_404(ApiKey, pk=object_id)
    try:
        api_key_revoke(api_key=api_key, user=request.user)
        model_admin.message_user(request, f"Revoked the key {api_key.name} ({api_key.prefix}).", messages.SUCCESS)
    except DomainError as exc:
        model_admin.message_user(request, exc.message, messages.WARNING)
    return HttpResponseRedirect(reverse("admin:core_apikey_change", args=[api_key.pk]))
