from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core.db import the_row_with
from core.middleware import note_api_key
from core.models import ApiKey

# last_used_at is refreshed at most this often, so that reads do not turn into a write each.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _raw_key(request) -> str | None:
    raw = request.META.get("HTTP_X_API_KEY")
    if raw is not None:
        return raw.strip()
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "api-key":
        return value.strip()
    return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`X-API-Key: <key>` or `Authorization: Api-Key <key>`.

    Keys are checked against the database on every request (no cache), so a revoked key is
    refused from the next request on.
    """

    def authenticate(self, request):
        raw = _raw_key(request)
        if raw is None:
            return None
        prefix, dot, _ = raw.partition(".")
        key = None
        if dot and prefix:
            # prefix is unique: one indexed lookup joined to the user, its SQL built once.
            key = the_row_with(ApiKey, "user", 'a."prefix" = %s', [prefix])
        if key is None or not key.is_valid(raw):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked:
            raise exceptions.AuthenticationFailed("API key has been revoked.")
        if key.has_expired:
            raise exceptions.AuthenticationFailed("API key has expired.")
        if not key.user.is_active:
            raise exceptions.AuthenticationFailed("The API key's user is inactive.")
        note_api_key(key.prefix)
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key.user, key

    def authenticate_header(self, request):
        return 'Bearer realm="api", Api-Key realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An API key (also accepted as `Authorization: Api-Key <key>`).",
        }
