"""Agent secrets (the token / key of auth_config) encrypted at rest with FIELD_ENCRYPTION_KEY (core/crypto.py).

First the rows are rewritten through the plain JSONField of the state before, so what is read and
written is what the column holds; then the field becomes the encrypting one, in the migration state
only: the column stays JSON (an AlterField would rebuild the table on SQLite for nothing).
Reversible: going back decrypts them. The code of this release also reads values still in clear (the
previous release may write some during a rolling deploy; `rotate_encryption_key` encrypts them); the
previous release cannot read encrypted ones, so a rollback migrates back to 0004 before the old code
starts (docs/migrations.md).
"""

from django.db import migrations

import core.fields
from core import crypto

SECRET_KEYS = ("key", "token")


def _rewrite(apps, convert) -> None:
    Agent = apps.get_model("agents", "Agent")
    for pk, config in Agent.objects.values_list("pk", "auth_config").iterator():
        if not isinstance(config, dict):
            continue
        changed = {k: (convert(v) if k in SECRET_KEYS and isinstance(v, str) and v else v) for k, v in config.items()}
        if changed != config:
            Agent.objects.filter(pk=pk).update(auth_config=changed)


def encrypt(apps, schema_editor):
    _rewrite(apps, lambda value: value if crypto.is_encrypted(value) else crypto.encrypt(value))


def decrypt(apps, schema_editor):
    _rewrite(apps, crypto.decrypt)


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0004_agent_max_concurrency"),
    ]

    operations = [
        migrations.RunPython(encrypt, decrypt),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="agent",
                    name="auth_config",
                    field=core.fields.EncryptedSecretsJSONField(blank=True, default=dict, secret_keys=["key", "token"]),
                ),
            ],
        ),
    ]
