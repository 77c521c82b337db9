from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from core.api.exceptions import Conflict
from core.models import ApiKey
from core.roles import Role


def api_key_create(*, user, role: Role, name: str, expires_at: datetime | None = None, created_by=None):
    """Creates a key and returns (key, raw secret). The secret is not stored and cannot be shown again."""
    return ApiKey.objects.create_key(user=user, role=role, name=name, expiry_date=expires_at, created_by=created_by)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked=False).update(revoked=True, revoked_at=timezone.now())
        if not updated:
            raise Conflict("This API key is already revoked.")
    api_key.refresh_from_db()
    return api_key


def user_get_or_create_with_role(*, username: str, role: Role):
    """Finds a user, or creates one (no password: it signs in with keys) holding the role's group."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user, created
