from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0005_run_cancel_reason"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                models.OrderBy(models.F("updated_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="run_updated_idx",
            ),
        ),
    ]
