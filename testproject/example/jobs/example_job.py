"""The example job: record that it ran, idempotently."""

from typing import Any

from kafka_jobs import Job
from testproject.example.models import JobRun


class ExampleJob(Job):
    """Record one run of job ``number`` of ``batch`` in the database."""

    queue_as = "default"

    def perform(self, batch: str, number: int, fail: bool = False, **_: Any) -> None:
        """Write one row keyed by the job id (or fail, with ``fail``: to see retries and the dead letter queue).

        Kafka delivers at least once: after a crash between running a job and committing its offset,
        the job runs again. Keying the row by job id makes a second run a no-op.
        """
        if fail:
            raise RuntimeError(f"example job {number} of batch {batch} was asked to fail")
        JobRun.objects.get_or_create(job_id=self.job_id, defaults={"batch": batch, "number": number})
