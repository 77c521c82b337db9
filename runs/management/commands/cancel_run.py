from django.core.management.base import BaseCommand, CommandError

from core.cli import USER_HELP, command_user
from core.errors import DomainError
from runs import services
from runs.cli import run_get

REASON_MAX = 1000  # as the API's cancel body


class Command(BaseCommand):
    help = (
        "Cancel a PENDING or RUNNING run, as POST /runs/{id}/cancel does: it is CANCELLED at once, nothing "
        "more is dispatched and in-flight steps end CANCELLED. Audited as run.cancel. Exit code 1 when the "
        "run is unknown or already finished."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", metavar="ID")
        parser.add_argument("--reason", default="", help=f"Why (kept with the run; at most {REASON_MAX} characters).")
        parser.add_argument("--user", help=USER_HELP)

    def handle(self, *args, run_id, reason, user=None, **options):
        if len(reason) > REASON_MAX:
            raise CommandError(f"--reason must be at most {REASON_MAX} characters")
        actor = command_user(user)
        try:
            run = services.run_cancel(run=run_get(run_id), user=actor, reason=reason)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Run {run.id} {run.status}" + (f": {reason}" if reason else "."))
