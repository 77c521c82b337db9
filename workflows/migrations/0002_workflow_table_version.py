# Expand only: workflows_workflow gets a version trigger for the cached list totals (core/api/totals.py).

from django.db import migrations

from core.migration_ops import table_version_trigger


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_workflow_definitions"), ("core", "0006_table_versions")]

    operations = [table_version_trigger("workflows_workflow")]
