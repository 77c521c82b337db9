from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from agents.transfer import FileError, agents_file_read, agents_import
from core.cli import USER_HELP, actor, command_user


class Command(BaseCommand):
    help = (
        "Register agents from a YAML or JSON file: the older system's agents.yaml (`agents:` list of name, "
        "url, description, auth_type, auth_config, timeout_ms, retry_config) or a file from export_agents. "
        "Entries are checked as POST /agents checks them. A name that exists is reported and skipped, or "
        "with --update changed to the file's fields (fields left out keep their values). All or nothing: "
        "invalid entries are listed with their index and field errors and then no agent is written (one "
        "transaction). Writes are audited (agent.create, agent.update). Exit code 1 when anything is invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="The agents file (YAML or JSON).")
        parser.add_argument("--update", action="store_true", help="Change agents whose name exists (else skip them).")
        parser.add_argument("--dry-run", action="store_true", help="Check and report, writing nothing.")
        parser.add_argument("--user", help=USER_HELP)

    def handle(self, *args, file, update, dry_run, user=None, **options):
        who = actor(command_user(user))
        path = Path(file)
        try:
            entries = agents_file_read(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from None
        except FileError as exc:
            raise CommandError(f"{path}: {exc}") from None
        self.stdout.write(f"{path}: {len(entries)} agent(s){' (dry run: nothing is written)' if dry_run else ''}")
        try:
            report = agents_import(entries=entries, user=who, update=update, dry_run=dry_run)
        except ImproperlyConfigured as exc:  # no FIELD_ENCRYPTION_KEY: the secrets cannot be stored
            raise CommandError(f"Nothing imported: {exc}") from None
        for index, name, errors in report.invalid:
            self.stdout.write(self.style.ERROR(f"  agents[{index}] {name or '(no name)'}: invalid"))
            for error in errors:
                self.stdout.write(f"    {error.field}: {error.message}")
        verb = "would be " if dry_run or report.invalid else ""
        lines = [
            (report.created, f"{verb}created"),
            (report.updated, f"{verb}updated"),
            (report.unchanged, "unchanged"),
            (report.skipped, "skipped: the name exists (--update to change it)"),
        ]
        for names, what in lines:
            for name in names:
                self.stdout.write(f"  {name}: {what}")
        summary = (
            f"{len(report.created)} created, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
            f"{len(report.skipped)} skipped, {len(report.invalid)} invalid"
        )
        if report.invalid:
            invalid = len(report.invalid)
            raise CommandError(f"Nothing imported: {invalid} invalid entr{'y' if invalid == 1 else 'ies'} ({summary})")
        self.stdout.write(("Dry run, nothing written: " if dry_run else "") + summary)
