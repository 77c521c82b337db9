"""Roles: viewer < operator < editor < admin.

A user's role comes from the Django group of the same name (superusers are admins); an API key
carries its own role. Each role includes everything the lower ones may do.
"""

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    EDITOR = "editor", "Editor"
    ADMIN = "admin", "Admin"


RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.EDITOR: 3, Role.ADMIN: 4}


def user_role(user) -> Role | None:
    """The highest role a user holds through their groups, or None."""
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_role_cache", False)
    if cached is not False:
        return cached
    names = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    role = max((Role(name) for name in names), key=RANK.__getitem__, default=None)
    user._role_cache = role
    return role


def has_role(role: Role | None, needed: Role) -> bool:
    return role is not None and RANK[role] >= RANK[needed]
