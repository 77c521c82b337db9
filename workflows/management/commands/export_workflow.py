import json

from django.core.management.base import BaseCommand, CommandError

from workflows.models import Workflow


class Command(BaseCommand):
    help = "Print a workflow as JSON in the older file format (agents by name); the current version by default."

    def add_base_argument(self, parser, *args, **kwargs):
        # Django's own --version (print Django's version) would clash with ours (pick a workflow version).
        if "--version" not in args:
            super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--version", type=int, dest="version_number", help="A saved version (default: current).")
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")

    def handle(self, *args, name, version_number=None, output=None, **options):
        workflow = Workflow.objects.live().filter(name=name).first()
        if workflow is None:
            raise CommandError(f"No workflow named {name!r}")
        number = version_number or workflow.version
        saved = workflow.versions.filter(version=number).first()
        if saved is None:
            raise CommandError(f"Workflow {name!r} has no version {number} (current: {workflow.version})")
        # workflow_id and version are informational: import ignores them, as the older files' readers did.
        document = {**saved.definition, "workflow_id": str(workflow.id), "version": str(number)}
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
            self.stdout.write(f"Wrote {name!r} version {number} to {output}")
        else:
            self.stdout.write(text, ending="")
