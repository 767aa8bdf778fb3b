"""The model the dashboard's permissions hang on; it has no table."""

from __future__ import annotations

from django.db import models


class Dashboard(models.Model):
    """The operations dashboard: ``view_dashboard`` shows its pages, ``change_dashboard`` allows its actions.

    Unmanaged and never saved: an instance only names what an admin log entry is about (``name``, e.g. the DLQ
    topic a replay came from).
    """

    name = models.CharField(max_length=255, primary_key=True)

    class Meta:
        managed = False
        app_label = "kafka_jobs"
        db_table = "kafka_jobs_dashboard"
        default_permissions = ("view", "change")
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"

    def __str__(self) -> str:
        return self.name
