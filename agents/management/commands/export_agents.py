import json
from pathlib import Path

import yaml
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from agents.models import Agent
from agents.transfer import SECRETS_NOTE, agent_export


class Command(BaseCommand):
    help = f"Write every agent (not deleted) to a YAML or JSON file that import_agents reads back. {SECRETS_NOTE}"

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["yaml", "json"], help="Default: from --output's extension, else yaml.")
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")

    def handle(self, *args, format=None, output=None, **options):
        fmt = format or ("json" if output and output.lower().endswith(".json") else "yaml")
        try:
            agents = [agent_export(agent) for agent in Agent.objects.live().order_by("name")]
        except ImproperlyConfigured as exc:  # no FIELD_ENCRYPTION_KEY: auth_config cannot be read
            raise CommandError(str(exc)) from None
        document = {"exported_at": timezone.now().isoformat(), "secrets": SECRETS_NOTE, "agents": agents}
        if fmt == "json":
            text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        else:
            header = "# Agents exported by manage.py export_agents; read back with: manage.py import_agents FILE\n"
            text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}") from None
        self.stdout.write(f"Wrote {len(agents)} agent(s) to {output} ({fmt}). {SECRETS_NOTE}")
