from django.conf import settings
from django.core.management.base import BaseCommand

from audit.services import audit_purge


class Command(BaseCommand):
    help = "Delete audit events older than AUDIT_RETENTION_DAYS (at least 90). Newer events are never touched."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args, dry_run, **options):
        days = settings.AUDIT_RETENTION_DAYS
        count = audit_purge(dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {count} audit event(s) older than {days} days.")
