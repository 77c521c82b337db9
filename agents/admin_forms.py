"""The agents admin page's form: auth settings editable, the secret write-only (never shown, never sent
back to the page), validated by the API's rules (agents/api/serializers.py) so both edit the same way."""

from django import forms
from rest_framework import serializers
from unfold.widgets import UnfoldAdminPasswordWidget, UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from agents import breaker, services
from agents.api.circuit import CircuitBreakerConfigSerializer
from agents.api.serializers import _clean_auth_config
from agents.choices import MASK, AuthType


class AgentForm(forms.ModelForm):
    # Not required: a form that leaves the auth type out keeps the stored one (as the API's PATCH does).
    auth_type = forms.ChoiceField(
        choices=AuthType.choices, required=False, label="Auth type", widget=UnfoldAdminSelectWidget
    )
    header_name = forms.CharField(
        label="API key header",
        required=False,
        strip=True,
        widget=UnfoldAdminTextInputWidget,
        help_text="For the API key auth type: the header that carries the key (default X-API-Key).",
    )
    # Never shows the stored secret; needed when the URL moves to another origin, which drops it.
    secret = forms.CharField(
        label="New token / API key",
        required=False,
        strip=True,
        widget=UnfoldAdminPasswordWidget(render_value=False),
        help_text="Write-only: replaces the stored bearer token or API key. Empty keeps it, except that a URL "
        "moved to another origin (scheme, host, port) or a new auth type needs it again.",
    )

    # No Meta: the admin builds the model part (its widgets, formfield_overrides, readonly fields).

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("auth_type", self.instance.auth_type)
        self.initial.setdefault("header_name", (self.instance.auth_config or {}).get("header_name", ""))
        self.auth_config = None  # set by clean() when the auth settings changed

    def clean_circuit_breaker_config(self):
        """The API's rules (bounds, known keys); missing keys take the defaults, empty means all defaults."""
        value = self.cleaned_data.get("circuit_breaker_config")
        if value is None:
            return None
        checked = CircuitBreakerConfigSerializer(data=value)
        if not checked.is_valid():
            errors = checked.errors
            if not isinstance(errors, dict):
                raise forms.ValidationError("Must be a JSON object.")
            raise forms.ValidationError([f"{key}: {' '.join(map(str, messages))}" for key, messages in errors.items()])
        return breaker.config_of(checked.validated_data)

    def clean(self):
        cleaned = super().clean()
        cleaned["auth_type"] = auth_type = cleaned.get("auth_type") or self.instance.auth_type or AuthType.NONE
        if not {"auth_type", "header_name", "secret"} & set(self.changed_data) and self.instance.pk:
            return cleaned
        # The instance still holds what is stored (the form's values reach it after clean).
        same_type = self.instance.pk is not None and self.instance.auth_type == auth_type
        stored = (self.instance.auth_config or {}) if same_type else {}
        secret_key = services.REQUIRED_SECRET.get(auth_type)
        if cleaned.get("secret") and not secret_key:
            self.add_error("secret", "This auth type has no secret.")
            return cleaned
        given = {}
        if secret_key:
            given[secret_key] = cleaned.get("secret") or (MASK if stored.get(secret_key) else "")
        if auth_type == AuthType.APIKEY and cleaned.get("header_name"):
            given["header_name"] = cleaned["header_name"]
        try:
            self.auth_config = _clean_auth_config(auth_type, given, stored)
        except serializers.ValidationError as exc:
            for key, messages in exc.detail["auth_config"].items():
                self.add_error("header_name" if key == "header_name" else "secret", " ".join(map(str, messages)))
        return cleaned
