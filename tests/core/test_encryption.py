"""Secrets at rest (issue 13, point 2): agent tokens and keys and webhook signing secrets are encrypted in the
database with FIELD_ENCRYPTION_KEY (Fernet; several keys, the first encrypts), existing rows by a
reversible data migration; keys rotate with `manage.py rotate_encryption_key`; production refuses to
start without a key and development keeps a random one in the data directory."""

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from agents.models import Agent
from audit.models import AuditEvent
from webhooks.models import WebhookEndpoint

ROOT = Path(__file__).resolve().parents[2]
TOKEN, KEY = "tok-at-rest-3c9d", "key-at-rest-81fe"
BEFORE = [("agents", "0004_agent_max_concurrency"), ("webhooks", "0001_webhook_endpoints_deliveries")]


def raw_columns() -> str:
    """Every stored agent auth_config and webhook secret, as the database holds them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT auth_config FROM agents_agent")
        agents = [str(row[0]) for row in cursor.fetchall()]
        cursor.execute("SELECT secret FROM webhooks_webhookendpoint")
        hooks = [str(row[0]) for row in cursor.fetchall()]
    return "\n".join(agents + hooks)


def configure(editor, admin) -> str:
    for name, auth in (
        ("b", {"auth_type": "bearer", "auth_config": {"token": TOKEN}}),
        ("k", {"auth_type": "apikey", "auth_config": {"key": KEY, "header_name": "X-K"}}),
    ):
        assert (
            editor.post(
                "/api/v1/agents", {"name": name, "url": "http://127.0.0.1:9/", **auth}, format="json"
            ).status_code
            == 201
        )
    hook = admin.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}, format="json")
    assert hook.status_code == 201
    return hook.json()["secret"]


def readable(secret: str) -> bool:
    configs = {agent.name: agent.auth_config for agent in Agent.objects.all()}
    return configs == {"b": {"token": TOKEN}, "k": {"key": KEY, "header_name": "X-K"}} and [
        hook.secret for hook in WebhookEndpoint.objects.all()
    ] == [secret]


@pytest.mark.django_db
def test_secrets_are_not_in_the_database_columns(editor, admin):
    secret = configure(editor, admin)
    stored = raw_columns()
    for value in (TOKEN, KEY, secret, secret.removeprefix("whsec_")):
        assert value not in stored
    assert stored.count("fernet:") == 3 and "X-K" in stored  # the header name is no secret
    assert readable(secret)


@pytest.mark.django_db
def test_a_dump_holds_no_secret_in_clear_and_loads_back(editor, admin, tmp_path):
    """Before: `dumpdata` wrote the decrypted tokens, keys and webhook secrets into the fixture."""
    secret = configure(editor, admin)
    fixture = tmp_path / "dump.json"
    call_command("dumpdata", "agents.agent", "webhooks.webhookendpoint", output=str(fixture), verbosity=0)
    dumped = fixture.read_text()
    for value in (TOKEN, KEY, secret, secret.removeprefix("whsec_")):
        assert value not in dumped
    assert dumped.count("fernet:") == 3 and "X-K" in dumped
    with connection.cursor() as cursor:  # the rows change; loading the dump brings the secrets back
        cursor.execute("UPDATE agents_agent SET auth_config = '{}'")
        cursor.execute("UPDATE webhooks_webhookendpoint SET secret = 'gone'")
    call_command("loaddata", str(fixture), verbosity=0)
    assert readable(secret)
    assert raw_columns().count("fernet:") == 3  # stored encrypted again, not as a token inside a token


@pytest.mark.django_db
def test_a_key_rotation_keeps_everything_readable(editor, admin, settings):
    old = settings.FIELD_ENCRYPTION_KEY[0]
    secret = configure(editor, admin)
    with connection.cursor() as cursor:  # one value left in clear by an earlier release
        cursor.execute("UPDATE webhooks_webhookendpoint SET secret = %s", [secret])
    before = raw_columns()
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [new, old]
    assert readable(secret)  # the old key still decrypts
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "agents.Agent.auth_config: 2 row(s)" in out.getvalue()
    assert "webhooks.WebhookEndpoint.secret: 1 row(s)" in out.getvalue()
    rotation = AuditEvent.objects.get(action="encryption_key.rotate")  # before: not audited
    assert rotation.changes["rows"][1] == {"agents.Agent.auth_config": 2, "webhooks.WebhookEndpoint.secret": 1}
    assert old not in str(rotation.changes) and new not in str(rotation.changes)
    after = raw_columns()
    assert after != before and secret not in after and TOKEN not in after and after.count("fernet:") == 3
    settings.FIELD_ENCRYPTION_KEY = [new]  # the old key removed
    assert readable(secret)
    settings.FIELD_ENCRYPTION_KEY = [old]  # only the removed key: an error, never ciphertext used as a secret
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        list(Agent.objects.all())


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_encrypts_existing_rows_and_decrypts_them_going_back():
    executor = MigrationExecutor(connection)
    head = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE)
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        old.get_model("agents", "Agent").objects.create(
            name="old", url="http://127.0.0.1:9/", auth_type="bearer", auth_config={"token": TOKEN}
        )
        secret = "whsec_" + "A" * 43 + "="
        old.get_model("webhooks", "WebhookEndpoint").objects.create(url="http://x/", event_types=["*"], secret=secret)
        assert TOKEN in raw_columns() and secret in raw_columns()

        MigrationExecutor(connection).migrate(head)
        assert TOKEN not in raw_columns() and secret not in raw_columns()
        assert Agent.objects.get().auth_config == {"token": TOKEN} and WebhookEndpoint.objects.get().secret == secret

        MigrationExecutor(connection).migrate(BEFORE)
        assert TOKEN in raw_columns() and secret in raw_columns() and "fernet:" not in raw_columns()
    finally:
        MigrationExecutor(connection).migrate(head)


def run(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    drop = ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    base |= {"MIGRATE_ON_START": "0", "DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "s3cret"}
    return subprocess.run(
        [sys.executable, *code.split()] if code.startswith("manage.py") else [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
    )


def test_production_refuses_to_start_without_an_encryption_key(tmp_path):
    missing = run("import config.wsgi", tmp_path)
    assert missing.returncode != 0 and "FIELD_ENCRYPTION_KEY must be set when DEBUG is off" in missing.stderr
    key = Fernet.generate_key().decode()
    assert run("import config.wsgi", tmp_path, FIELD_ENCRYPTION_KEY=key).returncode == 0
    check = run("manage.py check --deploy", tmp_path, DJANGO_SETTINGS_MODULE="config.settings")
    assert "(core.E002) FIELD_ENCRYPTION_KEY must be set when DEBUG is off" in check.stderr
    given = run(
        "manage.py check --deploy", tmp_path, DJANGO_SETTINGS_MODULE="config.settings", FIELD_ENCRYPTION_KEY=key
    )
    assert "core.E002" not in given.stdout + given.stderr


@pytest.mark.parametrize("value", ["not-a-key", "c2hvcnQ=", "op8-kWiMfo94dJ6gWsMr-By9xT7QVPNjCMuh1vx13lI=,oops"])
def test_a_malformed_key_stops_the_process_naming_the_variable(tmp_path, value):
    done = run("import config.settings", tmp_path, FIELD_ENCRYPTION_KEY=value)
    assert done.returncode != 0 and "FIELD_ENCRYPTION_KEY: key" in done.stderr and "is not a Fernet key" in done.stderr


PRINT_KEYS = "import config.settings as s; print(','.join(s.FIELD_ENCRYPTION_KEY))"


def test_development_keeps_a_random_key_in_the_data_directory(tmp_path):
    first = run(PRINT_KEYS, tmp_path, DEBUG="1")
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    stored = tmp_path / "data" / "field_encryption_key"
    assert stored.read_text().strip() == key and stat.S_IMODE(stored.stat().st_mode) == 0o600
    Fernet(key)  # a real Fernet key
    assert run(PRINT_KEYS, tmp_path, DEBUG="1").stdout.strip() == key  # the same at the next start
    assert run(PRINT_KEYS, tmp_path, DEBUG="1", FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode()).stdout != key
