"""Names of the Kafka headers kafka_jobs writes on a job's message, and the headers of one job.

The headers repeat what the envelope says (job name and id), so a message that cannot be decoded can
still be named in logs and in the dead letter queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .job import Job

JOB_HEADER = "kj-job"
ID_HEADER = "kj-id"


def job_headers(job: Job) -> list[tuple[str, bytes]]:
    """Return the headers of ``job``'s message."""
    return [(JOB_HEADER, job.job_name.encode()), (ID_HEADER, job.job_id.encode())]
