from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict
from core.models import ApiKey
from core.roles import Role


def api_key_create(*, user, role: Role, name: str, expires_at: datetime | None = None, created_by=None):
    """Creates a key and returns (key, raw secret). The secret is not stored and cannot be shown again."""
    with transaction.atomic():
        api_key, raw = ApiKey.objects.create_key(
            user=user, role=role, name=name, expiry_date=expires_at, created_by=created_by
        )
        changes = {
            "name": [None, name],
            "role": [None, str(role)],
            "user": [None, user.get_username()],
            "prefix": [None, api_key.prefix],
            "expires_at": [None, expires_at.isoformat() if expires_at else None],
        }
        audit_record(
            user=created_by, action="api_key.create", resource_type="api_key", resource_id=api_key.pk, changes=changes
        )
    return api_key, raw


def api_key_revoke(*, api_key: ApiKey, user=None) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked=False).update(revoked=True, revoked_at=timezone.now())
        if not updated:
            raise Conflict("This API key is already revoked.")
        audit_record(
            user=user,
            action="api_key.revoke",
            resource_type="api_key",
            resource_id=api_key.pk,
            changes={"revoked": [False, True]},
        )
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
