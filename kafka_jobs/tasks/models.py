"""The stored results of django.tasks tasks (``OPTIONS={"RESULTS": "database"}``); needs no task framework."""

from __future__ import annotations

import datetime as dt

from django.db import models, router

from ..dbtables import table_exists

# Django's TaskResultStatus values, spelled here so this module never needs the task framework.
STATUSES = [("READY", "Ready"), ("RUNNING", "Running"), ("FAILED", "Failed"), ("SUCCESSFUL", "Successful")]
FINISHED = ("SUCCESSFUL", "FAILED")


class TaskResultRecord(models.Model):
    """One django.tasks ``TaskResult``, written by the enqueuer (READY) and then by the worker."""

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    task_path = models.CharField(max_length=255, db_index=True)
    backend = models.CharField(max_length=100)
    queue_name = models.CharField(max_length=200)
    priority = models.IntegerField(default=0)
    run_after = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default="READY", db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    return_value = models.JSONField(null=True, blank=True)
    # [{"exception_class_path": ..., "traceback": ...}], one per failed run, oldest first.
    errors = models.JSONField(default=list, blank=True)
    worker_ids = models.JSONField(default=list, blank=True)

    class Meta:
        app_label = "kafka_jobs"
        db_table = "kafka_jobs_taskresult"
        verbose_name = "task result"
        ordering = ["-enqueued_at"]
        # Every database Django supports has JSON today; saying so here also spares `manage.py check` (and
        # runkafkaworker's start) a query asking the database.
        required_db_features = ["supports_json_field"]

    def __str__(self) -> str:
        return f"{self.task_path} {self.id} {self.status}"


def finished_before(moment: dt.datetime, status: str) -> models.QuerySet[TaskResultRecord]:
    """Return the results of ``status`` (SUCCESSFUL or FAILED) that finished before ``moment``."""
    if status not in FINISHED:
        raise ValueError(f"Only finished results ({', '.join(FINISHED)}) are pruned, not {status!r}.")
    return TaskResultRecord.objects.filter(status=status, finished_at__lt=moment)


def unmigrated_results_database() -> str | None:
    """Return the alias results are written to if it has no results table (``migrate`` was not run), else None."""
    alias = router.db_for_write(TaskResultRecord)
    return None if table_exists(TaskResultRecord, alias) else alias
