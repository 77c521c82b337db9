"""What the ops commands share: who acts, and how arguments and domain errors are shown.

Commands go through the services, so their writes are audited like the API's. The acting user is
`--user USERNAME`; without it the actor is the system (an audit event with an empty user, which the
admin and the audit log show as "system"), as `import_workflows` does.
"""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import CommandError

from core.errors import DomainError, InvalidInput

USER_HELP = "Username to act as (recorded in the audit trail); default: the system (an empty user)."


def command_user(username: str | None):
    """The active user named `username`, or None (the system) when no name is given."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user {username!r} (--user)")
    return user


def actor(user):
    """For services that need a user object: the system is an anonymous user (empty username)."""
    return user if user is not None else AnonymousUser()


def json_argument(value: str, *, option: str):
    """JSON text, or `@path` for a file holding it."""
    source = f"{option} {value}"
    if value.startswith("@"):
        path = Path(value[1:])
        source = str(path)
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option}: not valid JSON ({source}): {exc}") from None


def error_lines(exc: DomainError, *, prefix: str = "") -> list[str]:
    """One line per problem: `field: message` for invalid input, else the message."""
    if isinstance(exc, InvalidInput):
        return [
            f"{prefix}{error.field}: {error.message}" if error.field else f"{prefix}{error.message}"
            for error in exc.errors
        ]
    return [f"{prefix}{exc.message}"]
