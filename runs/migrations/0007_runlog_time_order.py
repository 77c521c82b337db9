import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    """Run logs are listed in time order: `timestamp` is when what an entry tells happened (set by the
    writer, so no longer `auto_now_add`) and an index serves (run, timestamp, id)."""

    dependencies = [
        ("runs", "0006_run_updated_idx"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="runlog",
            options={"ordering": ("timestamp", "id")},
        ),
        # auto_now_add -> default=timezone.now changes nothing in the database (both are set by Django,
        # the column stays NOT NULL without a database default); SQLite would otherwise rebuild the table.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="runlog",
                    name="timestamp",
                    field=models.DateTimeField(default=django.utils.timezone.now),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="runlog",
            index=models.Index(fields=["run", "timestamp", "id"], name="runlog_run_time_idx"),
        ),
    ]
