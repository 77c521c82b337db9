from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.roles import Role
from core.services import api_key_create, user_get_or_create_with_role


class Command(BaseCommand):
    help = (
        "Create an API key for a user (created if missing, with the role's group). "
        "The raw key is printed alone on the last line; it is not stored and cannot be shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", default="cli", help="A label for the key (max 50 characters).")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args, username, role, name, expires_in_days, **options):
        if not username.strip() or len(username) > 150:
            raise CommandError("username must be 1 to 150 characters")
        if len(name) > 50 or not name.strip():
            raise CommandError("--name must be 1 to 50 characters")
        expires_at = None
        if expires_in_days is not None:
            if not 1 <= expires_in_days <= 3650:
                raise CommandError("--expires-in-days must be between 1 and 3650")
            expires_at = timezone.now() + timedelta(days=expires_in_days)
        user, created = user_get_or_create_with_role(username=username, role=Role(role))
        api_key, raw = api_key_create(user=user, role=Role(role), name=name, expires_at=expires_at)
        if created:
            self.stdout.write(f"Created user {username!r} with role {role}.")
        expiry = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
        self.stdout.write(f"API key {api_key.prefix} ({role}{expiry}) for {username!r}. Store it now:")
        self.stdout.write(raw)
