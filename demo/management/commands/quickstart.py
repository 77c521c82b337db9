import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from core.models import ApiKey
from core.roles import Role
from core.services import api_key_create
from demo.setup import demo_setup, examples_import

KEY_NAME = "quickstart"
KEY_FILE = "quickstart-api-key"


class Command(BaseCommand):
    help = (
        "Prepare the embedded quick start: apply migrations, make sure an admin account exists, issue "
        "a fresh admin API key (the previous quick-start key is revoked), register the demo agent and a "
        "sample workflow when DEMO_AGENT_URL is set. Prints where to go."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--username", default="admin")

    def handle(self, *args, url, username, **options):
        call_command("migrate", interactive=False, verbosity=0)
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        password_line = "password: set at first start (reset: python manage.py changepassword admin)"
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser(username=username, email="", password=password)
            password_line = f"password: {password}   (shown once; change it in the admin)"
        ApiKey.objects.filter(user=user, name=KEY_NAME, revoked=False).update(revoked=True)
        _, raw = api_key_create(user=user, role=Role.ADMIN, name=KEY_NAME)
        key_file = Path(settings.DATA_DIR) / KEY_FILE
        key_file.touch(mode=0o600)
        key_file.write_text(raw + "\n")
        lines = []
        if settings.DEMO_AGENT_URL:
            workflow = demo_setup(user=user, agent_url=settings.DEMO_AGENT_URL)
            lines = [
                f"  Demo agent: {settings.DEMO_AGENT_URL}  (registered as demo-echo, demo-uppercase, ...)",
                f"  Run the sample workflow {workflow.name!r}:",
                f"    curl -s -X POST -H 'X-API-Key: {raw}' -H 'Content-Type: application/json' \\",
                '      -d \'{"input_data": {"text": "hello multi-agent world"}}\' \\',
                f"      {url}/api/v1/workflows/{workflow.id}/execute",
                f"    then: curl -s -H 'X-API-Key: {raw}' {url}/api/v1/runs/<id from the answer>",
            ]
            examples = examples_import(user=user)
            if examples:
                lines.append("  Examples (examples/*.json, sample inputs in examples/inputs/), one per step type:")
                for example, sample in examples:
                    lines.append(f"    {example.name:<22} {example.id}  input: {json.dumps(sample)}")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Workflow platform is starting.",
                    f"  API:        {url}/api/v1/",
                    f"  API docs:   {url}/docs   (ReDoc: {url}/redoc, schema: {url}/openapi.json)",
                    f"  Admin:      {url}/admin/   user: {username}   {password_line}",
                    f"  Health:     {url}/health   {url}/health/ready   metrics: {url}/metrics",
                    f"  Admin API key (new at each start; the previous one is revoked): {raw}",
                    f"  (also in {key_file}, for scripts)",
                    f'  Try:        curl -H "X-API-Key: {raw}" {url}/api/v1/agents',
                    *lines,
                    "",
                ]
            )
        )
