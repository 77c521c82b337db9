# Expand only: a new table and a trigger function; nothing reads the table before this release, and
# tables only use the function once their own migration adds a trigger (agents 0007, workflows 0002).
# PostgreSQL only: SQLite (the quick start) counts every total (core/api/totals.py).

from django.db import migrations

from core.migration_ops import postgresql_only

CREATE_SQL = """
CREATE TABLE core_tableversion (table_name varchar(63) PRIMARY KEY, version uuid NOT NULL);
CREATE FUNCTION core_table_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_tableversion (table_name, version) VALUES (TG_TABLE_NAME, gen_random_uuid())
    ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version;
    RETURN NULL;
END $$;
"""
DROP_SQL = """
DROP FUNCTION IF EXISTS core_table_version_bump() CASCADE;
DROP TABLE IF EXISTS core_tableversion;
"""


class Migration(migrations.Migration):
    dependencies = [("core", "0005_outbox_trace_context")]

    operations = [postgresql_only(CREATE_SQL, DROP_SQL)]
