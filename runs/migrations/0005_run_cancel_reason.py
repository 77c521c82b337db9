from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0004_run_recoveries"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="cancel_reason",
            field=models.TextField(blank=True, null=True),
        ),
    ]
