# Expand only: a nullable column (null = the defaults) and a new table; nothing reads them before this release.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0005_encrypt_auth_secrets"),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="circuit_breaker_config",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="historicalagent",
            name="circuit_breaker_config",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="AgentCircuit",
            fields=[
                (
                    "agent",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="circuit",
                        serialize=False,
                        to="agents.agent",
                    ),
                ),
                ("data", models.JSONField(default=dict)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
