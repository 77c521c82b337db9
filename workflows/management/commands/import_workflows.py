import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError, InvalidInput
from workflows import services


class Command(BaseCommand):
    help = (
        "Import workflow JSON files (the older format). A new name creates a workflow; an existing name "
        "gets a new version when the definition differs. Each file is reported; a bad file does not stop "
        "the others. Exit code 1 when any file failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--user", help="Username to record as the author (default: none, i.e. the system).")

    def handle(self, *args, files, user=None, **options):
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user {user!r}")
        failed = 0
        for name in files:
            try:
                self.stdout.write(f"{name}: {self._import(Path(name), actor)}")
            except (OSError, ValueError, DomainError) as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f"{name}: failed"))
                for line in _describe(exc):
                    self.stdout.write(f"  {line}")
        summary = f"{len(files) - failed} imported, {failed} failed"
        self.stdout.write(summary)
        if failed:
            raise CommandError(summary, returncode=1)

    def _import(self, path: Path, actor) -> str:
        document = json.loads(path.read_text(encoding="utf-8"))
        workflow, outcome = services.workflow_import(user=actor, document=document)
        if outcome == "created":
            return f"created {workflow.name!r} version 1"
        if outcome == "unchanged":
            return f"unchanged {workflow.name!r} (version {workflow.version})"
        return f"updated {workflow.name!r} to version {workflow.version}"


def _describe(exc) -> list[str]:
    if isinstance(exc, InvalidInput):
        return [str(error) if error.field else f"body: {error.message}" for error in exc.errors]
    if isinstance(exc, json.JSONDecodeError):
        return [f"not valid JSON: {exc}"]
    return [str(getattr(exc, "message", exc))]
