"""Operations the apps' migrations share: SQL that only PostgreSQL runs (SQLite, the quick start, has
no triggers: what they maintain is computed there instead), and the table-version trigger of
core/api/totals.py. Kept stable: migrations already applied import these."""

import re

from django.db import migrations


def postgresql_only(sql: str, reverse_sql: str) -> migrations.RunPython:
    def run(sql_text):
        def apply(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql_text)

        return apply

    return migrations.RunPython(run(sql), run(reverse_sql))


def table_version_trigger(table: str) -> migrations.RunPython:
    """A statement trigger giving `table` a new version in every statement that writes it (bulk and raw
    SQL included), in the writer's transaction, and its first version."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", table):  # a name written in a migration, never user input
        raise ValueError(f"not a plain table name: {table!r}")
    create = (
        f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "  # noqa: S608
        "FOR EACH STATEMENT EXECUTE FUNCTION core_table_version_bump(); "
        f"INSERT INTO core_tableversion (table_name, version) VALUES ('{table}', gen_random_uuid()) "
        "ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version;"
    )
    drop = (
        f"DROP TRIGGER IF EXISTS {table}_version ON {table}; "  # noqa: S608 - a checked name
        f"DELETE FROM core_tableversion WHERE table_name = '{table}';"
    )
    return postgresql_only(create, drop)
