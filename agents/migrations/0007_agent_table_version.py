# Expand only: agents_agent gets a version trigger for the cached list totals (core/api/totals.py).

from django.db import migrations

from core.migration_ops import table_version_trigger


class Migration(migrations.Migration):
    dependencies = [("agents", "0006_agent_circuit_breaker"), ("core", "0006_table_versions")]

    operations = [table_version_trigger("agents_agent")]
