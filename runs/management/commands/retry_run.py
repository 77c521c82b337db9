from django.core.management.base import BaseCommand, CommandError

from core.cli import USER_HELP, command_user
from core.errors import DomainError
from runs import services
from runs.cli import run_get


class Command(BaseCommand):
    help = (
        "Retry a FAILED or CANCELLED run, as POST /runs/{id}/retry does: the same run goes back to PENDING "
        "with attempt + 1 and resumes at its first incomplete step (completed steps keep their outputs). "
        "Audited as run.retry. Exit code 1 when the run is unknown or cannot be retried."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", metavar="ID")
        parser.add_argument("--user", help=USER_HELP)

    def handle(self, *args, run_id, user=None, **options):
        actor = command_user(user)
        try:
            run = services.run_retry(run=run_get(run_id), user=actor)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Run {run.id} is {run.status} again (attempt {run.attempt}).")
