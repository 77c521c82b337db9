"""Webhook signing secrets encrypted at rest with FIELD_ENCRYPTION_KEY (core/crypto.py).

The column widens from 100 to 255 characters (still varchar: the encrypted form of a 50-character
secret is 171); the rows are rewritten through the plain field, then the field becomes the encrypting
one in the migration state only (no column changes). Reversible: going back decrypts, then narrows. As
for agents (agents/migrations/0005_encrypt_auth_secrets.py), a rollback migrates back before the old
code starts.
"""

from django.db import migrations, models

import core.fields
from core import crypto


def _rewrite(apps, convert) -> None:
    Endpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for pk, secret in Endpoint.objects.values_list("pk", "secret").iterator():
        changed = convert(secret) if secret else secret
        if changed != secret:
            Endpoint.objects.filter(pk=pk).update(secret=changed)


def encrypt(apps, schema_editor):
    _rewrite(apps, lambda value: value if crypto.is_encrypted(value) else crypto.encrypt(value))


def decrypt(apps, schema_editor):
    _rewrite(apps, crypto.decrypt)


class AlterFieldExceptOnSQLite(migrations.AlterField):
    """PostgreSQL widens a varchar in place, without rewriting the table. SQLite does not enforce varchar
    lengths, so there is nothing to change, and Django would rebuild the whole table to change nothing."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "sqlite":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "sqlite":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_webhook_endpoints_deliveries"),
    ]

    operations = [
        AlterFieldExceptOnSQLite(
            model_name="webhookendpoint",
            name="secret",
            field=models.CharField(editable=False, max_length=255),
        ),
        migrations.RunPython(encrypt, decrypt),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="webhookendpoint",
                    name="secret",
                    field=core.fields.EncryptedCharField(editable=False, max_length=255),
                ),
            ],
        ),
    ]
