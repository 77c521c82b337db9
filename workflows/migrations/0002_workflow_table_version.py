# Expand only: a statement trigger giving workflows_workflow a new version in every statement that writes it (bulk
# and raw SQL included), in the writer's transaction: the cached list totals (core/api/totals.py) read it.
# PostgreSQL only, like the function it calls (core 0006).

from django.db import migrations

CREATE_SQL = """
CREATE TRIGGER workflows_workflow_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workflows_workflow
FOR EACH STATEMENT EXECUTE FUNCTION core_table_version_bump();
INSERT INTO core_tableversion (table_name, version) VALUES ('workflows_workflow', gen_random_uuid())
ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version;
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS workflows_workflow_version ON workflows_workflow;
DELETE FROM core_tableversion WHERE table_name = 'workflows_workflow';
"""


def on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_workflow_definitions"), ("core", "0006_table_versions")]

    operations = [migrations.RunPython(on_postgresql(CREATE_SQL), on_postgresql(DROP_SQL))]
