"""``OutboxMessage``: a job's fully encoded Kafka message, written in the caller's transaction."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """One message waiting for the relay: pending (``failed_at`` null) or failed (with its ``error``).

    Everything the producer needs is stored as it will be sent (built by the backend's ``prepare`` at
    enqueue, so routing and the partitioner ran in the caller's context). Only the delay tier is chosen
    when the relay produces it, as for a job dispatched at commit.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Rows of one lane are produced by one relay at a time, in id order; a lane is a hash of the topic and
    # the key (or the explicit partition), so the messages of one key share a lane.
    lane = models.SmallIntegerField()
    job_id = models.CharField(max_length=64)
    job_name = models.CharField(max_length=255)
    topic = models.CharField(max_length=255)
    key = models.BinaryField(null=True)
    partition = models.IntegerField(null=True)
    headers = models.JSONField(default=list)  # [[name, base64 value], ...]
    value = models.BinaryField()
    scheduled_at = models.DateTimeField(null=True)
    failed_at = models.DateTimeField(null=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        app_label = "kafka_jobs"
        db_table = "kafka_jobs_outbox"
        # As for TaskResultRecord: spares `manage.py check` a query asking the database whether it has JSON
        # (which also failed the check tests that run without a database, depending on the test order).
        required_db_features = ["supports_json_field"]
        verbose_name = "outbox message"
        indexes = [
            models.Index(
                fields=["lane", "id"], condition=models.Q(failed_at__isnull=True), name="kafka_jobs_outbox_pending"
            )
        ]

    def __str__(self) -> str:
        state = "failed" if self.failed_at else "pending"
        return f"{self.job_name} {self.job_id} -> {self.topic} ({state})"
