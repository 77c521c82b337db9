from datetime import UTC

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from runs.choices import RunStatus
from runs.cli import duration_text, run_duration_ms, since_parse, snippet
from runs.models import Run

LIMIT_MAX = 1000
COLUMNS = ("ID", "WORKFLOW", "STATUS", "CREATED (UTC)", "DURATION", "ERROR")


class Command(BaseCommand):
    help = (
        "List runs, newest first, as a table: id, workflow, status, created, duration (a running run counts "
        "up to now), the start of its error. Filters: --status (several: FAILED,CANCELLED or repeated), "
        "--since (1d, 12h, 30m, or an ISO date / date-time, UTC unless it has an offset), --workflow NAME."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--status", action="append", default=[], help="PENDING, RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED."
        )
        parser.add_argument("--since", help="Created at or after: 1d, 12h, 30m or an ISO date (2026-11-26).")
        parser.add_argument("--workflow", help="The workflow's name (as the run recorded it).")
        parser.add_argument(
            "--limit", type=int, default=20, help=f"At most this many rows (1..{LIMIT_MAX}, default 20)."
        )

    def handle(self, *args, status, since, workflow, limit, **options):
        if not 1 <= limit <= LIMIT_MAX:
            raise CommandError(f"--limit must be between 1 and {LIMIT_MAX}")
        runs = Run.objects.defer("plan", "input_data", "output_data").order_by("-created_at", "-id")
        statuses = _statuses(status)
        if statuses:
            runs = runs.filter(status__in=statuses)
        if since:
            runs = runs.filter(created_at__gte=since_parse(since))
        if workflow:
            runs = runs.filter(workflow_name=workflow)
        total = runs.count()
        now = timezone.now()
        rows = [
            (
                str(run.id),
                run.workflow_name,
                run.status,
                f"{run.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                duration_text(run_duration_ms(run, now=now)),
                snippet(run.error_message, 60),
            )
            for run in runs[:limit]
        ]
        if not rows:
            self.stdout.write("No runs match.")
            return
        widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS) - 1)]
        for row in [COLUMNS, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]).rstrip())
        self.stdout.write(f"{len(rows)} of {total} run(s)" + (" (raise --limit for more)" if total > len(rows) else ""))


def _statuses(values: list[str]) -> list[str]:
    statuses = [part.strip().upper() for value in values for part in value.split(",") if part.strip()]
    unknown = sorted(set(statuses) - set(RunStatus.values))
    if unknown:
        raise CommandError(f"--status: unknown {', '.join(unknown)} (one of {', '.join(RunStatus.values)})")
    return statuses
