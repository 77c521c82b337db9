"""System checks of our own (registered in CoreConfig.ready()).

`manage.py check --deploy` reports them; the web server (config/wsgi.py, asgi.py) runs the ones it must
not serve without and refuses to start when they fail."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def secret_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """core.E001: a secret from the environment. Without one the settings make up a random key, which
    would sign sessions and JWTs that no other process or restart accepts."""
    if getattr(settings, "SECRET_KEY_MISSING", False):
        return [
            checks.Error(
                "SECRET_KEY must be set when DEBUG is off",
                hint="Set the SECRET_KEY environment variable (./dev up keeps one in .data/secret_key).",
                id="core.E001",
            )
        ]
    return []


def encryption_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """core.E002: the key of the secrets at rest. Without one nothing can encrypt or decrypt agent tokens
    and webhook secrets, and a made-up key would lose them at the next start."""
    if getattr(settings, "FIELD_ENCRYPTION_KEY_MISSING", False):
        return [
            checks.Error(
                "FIELD_ENCRYPTION_KEY must be set when DEBUG is off",
                hint=(
                    'Set FIELD_ENCRYPTION_KEY to a Fernet key: python -c "from cryptography.fernet import '
                    'Fernet; print(Fernet.generate_key().decode())" (./dev up keeps one in '
                    ".data/field_encryption_key)."
                ),
                id="core.E002",
            )
        ]
    return []


# The checks a web server must pass before it serves.
SERVE_CHECKS = [secret_key_check, encryption_key_check]


def serve_checks_run() -> None:
    """Raises ImproperlyConfigured with every failing serve check's message."""
    errors = [error for check in SERVE_CHECKS for error in check() if error.is_serious()]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{error.msg} ({error.id})" for error in errors))
