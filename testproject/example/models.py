"""What the example job leaves behind, so runs can be counted."""

from django.db import models

BATCH_MAX_LENGTH = 64


class JobRun(models.Model):
    """One completed run of ``ExampleJob``; unique per job id, so a redelivered job is counted once."""

    job_id = models.UUIDField(unique=True)
    batch = models.CharField(max_length=BATCH_MAX_LENGTH, db_index=True)
    number = models.PositiveIntegerField()
    ran_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.batch}#{self.number}"
