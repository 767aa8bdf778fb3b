"""The dashboard's permission model (unmanaged: no table is created)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("kafka_jobs", "0002_taskresult")]

    operations = [
        migrations.CreateModel(
            name="Dashboard",
            fields=[("name", models.CharField(max_length=255, primary_key=True, serialize=False))],
            options={
                "verbose_name": "dashboard",
                "verbose_name_plural": "dashboard",
                "db_table": "kafka_jobs_dashboard",
                "managed": False,
                "default_permissions": ("view", "change"),
            },
        ),
    ]
