import uuid

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from core.roles import Role


class ApiKeyManager(BaseAPIKeyManager):
    def assign_key(self, obj):
        key = super().assign_key(obj)
        # The library's primary key embeds the key's hash; ours is a plain UUID so that ids in
        # URLs and logs reveal nothing about the secret.
        obj.id = uuid.uuid4()
        return key


class ApiKey(AbstractAPIKey):
    """An API key: shown once, stored as a SHA-512 hash, looked up by its 8-character prefix."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=50)
    created = None  # replaced by created_at, the name every other resource uses
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ("-created_at", "-id")
