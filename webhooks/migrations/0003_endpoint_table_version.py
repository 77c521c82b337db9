# Expand only: webhooks_webhookendpoint gets a version trigger, so each process keeps the active
# endpoints it read while the table is unchanged (core/versions.py; read at every event insert).

from django.db import migrations

from core.migration_ops import table_version_trigger


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0002_encrypt_secret"), ("core", "0006_table_versions")]

    operations = [table_version_trigger("webhooks_webhookendpoint")]
