from rest_framework import permissions

from core.models import ApiKey
from core.roles import Role, has_role, user_role

SAFE_ACTIONS = {"list", "retrieve", "metadata"}


def request_role(request) -> Role | None:
    """The role a request acts with: the API key's role, else the user's."""
    if isinstance(request.auth, ApiKey):
        return Role(request.auth.role)
    return user_role(request.user)


class HasRole(permissions.BasePermission):
    """Allows a request when its role reaches the one the view asks for this action.

    Views say what they need with `read_role` (safe methods, default viewer), `write_role`
    (other methods, default editor) and `action_roles` ({action name: role}) for the rest.
    """

    message = "Your role does not allow this action."  # replaced by the role needed, per request

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        role, needed = request_role(request), required_role(view, request)
        if has_role(role, needed):
            return True
        # DRF makes a permission object per request, so the 403 can say what this one lacked.
        self.message = f"This action needs the {needed.value} role; " + (
            f"your role is {role.value}" if role else "you have no role"
        )
        return False


def required_role(view, request=None) -> Role:
    action = getattr(view, "action", None)
    action_roles = getattr(view, "action_roles", {})
    if action in action_roles:
        return Role(action_roles[action])
    method = (request.method if request is not None else "GET").upper()
    if method in permissions.SAFE_METHODS or action in SAFE_ACTIONS:
        return Role(getattr(view, "read_role", Role.VIEWER))
    return Role(getattr(view, "write_role", Role.EDITOR))
