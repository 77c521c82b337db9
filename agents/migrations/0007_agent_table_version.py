# Expand only: a statement trigger giving agents_agent a new version in every statement that writes it (bulk
# and raw SQL included), in the writer's transaction: the cached list totals (core/api/totals.py) read it.
# PostgreSQL only, like the function it calls (core 0006).

from django.db import migrations

CREATE_SQL = """
CREATE TRIGGER agents_agent_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agents_agent
FOR EACH STATEMENT EXECUTE FUNCTION core_table_version_bump();
INSERT INTO core_tableversion (table_name, version) VALUES ('agents_agent', gen_random_uuid())
ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version;
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS agents_agent_version ON agents_agent;
DELETE FROM core_tableversion WHERE table_name = 'agents_agent';
"""


def on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("agents", "0006_agent_circuit_breaker"), ("core", "0006_table_versions")]

    operations = [migrations.RunPython(on_postgresql(CREATE_SQL), on_postgresql(DROP_SQL))]
