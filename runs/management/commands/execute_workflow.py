import json
import uuid

from django.core.management.base import BaseCommand, CommandError

from core.cli import USER_HELP, command_user, error_lines, json_argument
from core.errors import DomainError, InvalidInput
from runs import services
from runs.choices import RunStatus
from runs.cli import duration_text, run_duration_ms, run_follow
from workflows.models import Workflow

# Exit codes with --wait, by how the run ended; NOT_STARTED when no run was created.
EXIT_CODES = {RunStatus.COMPLETED: 0, RunStatus.FAILED: 1, RunStatus.CANCELLED: 2}
TIMED_OUT = 3
NOT_STARTED = 4


class Command(BaseCommand):
    help = (
        "Run a workflow (by name or id) as POST /workflows/{id}/execute does: the input is checked against "
        "its input_schema, the run is created PENDING and audited (run.execute). Prints the run id alone on "
        "the first line. With --wait, follows the run and prints each step as it finishes (step id, status, "
        "duration), then the run's status, output or error. Exit codes: 0 run created (without --wait) or "
        "COMPLETED, 1 FAILED, 2 CANCELLED, 3 still running when --timeout ran out (the run goes on), "
        "4 no run was created (unknown or inactive workflow, invalid input: its field errors are printed; "
        "a usage error)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # argparse exits 2 on a usage error, which --wait uses for CANCELLED: no run was created either.
        exit_ = parser.exit
        parser.exit = lambda status=0, message=None: exit_(NOT_STARTED if status == 2 else status, message)
        return parser

    def add_arguments(self, parser):
        parser.add_argument("name", help="The workflow's name (or id).")
        parser.add_argument(
            "--input",
            default="{}",
            dest="input_text",
            metavar="JSON",
            help='The run\'s input_data: JSON text (\'{"text": "hi"}\') or @file.json. Default {}.',
        )
        parser.add_argument("--wait", action="store_true", help="Follow the run to its end.")
        parser.add_argument(
            "--timeout", type=float, default=600, metavar="SECONDS", help="Seconds --wait waits at most (default 600)."
        )
        parser.add_argument("--user", help=USER_HELP)

    def handle(self, *args, name, input_text, wait, timeout, user=None, **options):
        try:
            run = self._start(name, input_text, timeout, user)
        except CommandError as exc:
            exc.returncode = NOT_STARTED
            raise
        self.stdout.write(str(run.id))
        if not wait:
            return
        self.stdout.write(f"Following {run.workflow_name!r} version {run.workflow_version} (at most {timeout:g} s):")
        run, ended = run_follow(run, timeout=timeout, write=self.stdout.write)
        duration = duration_text(run_duration_ms(run))
        if not ended:
            raise CommandError(
                f"Timed out after {timeout:g} s: run {run.id} is still {run.status} (it goes on; "
                f"see `manage.py runs` or GET /api/v1/runs/{run.id})",
                returncode=TIMED_OUT,
            )
        self.stdout.write(f"Run {run.id} {run.status} in {duration}")
        if run.status == RunStatus.COMPLETED:
            self.stdout.write(json.dumps(run.output_data, indent=2, ensure_ascii=False))
            return
        raise CommandError(f"Run {run.id} {run.status}: {_why(run)}", returncode=EXIT_CODES[run.status])

    def _start(self, name, input_text, timeout, user):
        if timeout <= 0:
            raise CommandError("--timeout must be more than 0 seconds")
        actor = command_user(user)
        input_data = json_argument(input_text, option="--input")
        if not isinstance(input_data, dict):
            raise CommandError("--input must be a JSON object")
        workflow = _workflow(name)
        try:
            return services.run_execute(workflow=workflow, input_data=input_data, user=actor)
        except InvalidInput as exc:
            for line in error_lines(exc):
                self.stderr.write(f"  {line}")
            count = len(exc.errors)
            raise CommandError(
                f"No run was created: the input breaks the input_schema of {workflow.name!r} ({count} error(s) above)"
            ) from None
        except DomainError as exc:
            raise CommandError(f"No run was created: {exc.message}") from None


def _why(run) -> str:
    if run.status == RunStatus.FAILED:
        return run.error_message or "failed"
    reason = getattr(run, "cancel_reason", None)  # the reason given to cancel, once runs keep it
    by = f"cancelled by {run.cancelled_by}" if run.cancelled_by else "cancelled"
    return f"{by}: {reason}" if reason else by


def _workflow(name: str) -> Workflow:
    found = Workflow.objects.live().filter(name=name).first()
    if found is None:
        try:
            found = Workflow.objects.live().filter(pk=uuid.UUID(name)).first()
        except ValueError:
            pass
    if found is None:
        raise CommandError(f"No workflow named {name!r}")
    return found
