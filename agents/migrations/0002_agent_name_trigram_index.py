"""A trigram index for the case-insensitive name filter (`UPPER(name) LIKE '%...%'`), PostgreSQL only.

pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner can create it. Where that is
not allowed the index is skipped with a warning: the filter still works, only slower at scale.
"""

import logging

from django.db import migrations, transaction

logger = logging.getLogger(__name__)
INDEX = "agent_name_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # noqa: BLE001 - any refusal means: go on without the index
        logger.warning("pg_trgm unavailable (%s); the agent name filter will not be indexed", exc)
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON agents_agent USING gin (UPPER(name) gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_agent_registry")]

    operations = [migrations.RunPython(create, drop)]
