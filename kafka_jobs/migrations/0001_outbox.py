"""The outbox table; on PostgreSQL also a trigger that wakes the relays (NOTIFY) when rows commit."""

from collections.abc import Callable
from typing import Any

import django.utils.timezone
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# The channel kafka_jobs.outbox.wakeup listens on. One NOTIFY per INSERT statement; PostgreSQL delivers it at
# commit, and never for a transaction that rolls back.
NOTIFY_FUNCTION = """
CREATE FUNCTION kafka_jobs_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kafka_jobs_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER kafka_jobs_outbox_notify AFTER INSERT ON kafka_jobs_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION kafka_jobs_outbox_notify();
"""
DROP_NOTIFY_FUNCTION = """
DROP TRIGGER IF EXISTS kafka_jobs_outbox_notify ON kafka_jobs_outbox;
DROP FUNCTION IF EXISTS kafka_jobs_outbox_notify();
"""


def _on_postgresql(sql: str) -> Callable[[Any, BaseDatabaseSchemaEditor], None]:
    def run(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="OutboxMessage",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("lane", models.SmallIntegerField()),
                ("job_id", models.CharField(max_length=64)),
                ("job_name", models.CharField(max_length=255)),
                ("topic", models.CharField(max_length=255)),
                ("key", models.BinaryField(null=True)),
                ("partition", models.IntegerField(null=True)),
                ("headers", models.JSONField(default=list)),
                ("value", models.BinaryField()),
                ("scheduled_at", models.DateTimeField(null=True)),
                ("failed_at", models.DateTimeField(null=True)),
                ("error", models.TextField(blank=True, default="")),
            ],
            options={
                "verbose_name": "outbox message",
                "db_table": "kafka_jobs_outbox",
                "indexes": [
                    models.Index(
                        condition=models.Q(("failed_at__isnull", True)),
                        fields=["lane", "id"],
                        name="kafka_jobs_outbox_pending",
                    )
                ],
            },
        ),
        migrations.RunPython(_on_postgresql(NOTIFY_FUNCTION), _on_postgresql(DROP_NOTIFY_FUNCTION), elidable=False),
    ]
