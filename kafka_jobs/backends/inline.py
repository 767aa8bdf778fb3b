"""``JOB_BACKEND = "inline"``: run each job at once in the enqueueing thread (after commit)."""

from __future__ import annotations

from ..exceptions import InvalidJob
from ..execution import run_job
from ..job import Job
from ..serializer import get_serializer
from .base import BaseBackend, seconds_until_due


def roundtrip(payload: bytes) -> Job:
    """Decode an encoded job as the worker would, so in-process backends see what Kafka would deliver."""
    return get_serializer().loads(payload).to_job()


class InlineBackend(BaseBackend):
    """Run jobs synchronously; their errors propagate to the caller."""

    name = "inline"

    def encode(self, job: Job) -> bytes:
        """Refuse a job scheduled for later (as Rails' inline adapter does): it could only run now."""
        if seconds_until_due(job) > 0:
            raise InvalidJob(
                f"The inline backend runs jobs at once and cannot run {job!r} at {job.scheduled_at}. Use "
                'JOB_BACKEND = "async" or "kafka" for scheduled jobs, or call perform_now().'
            )
        return super().encode(job)

    def dispatch(self, job: Job, payload: bytes) -> None:
        """Run the job now, from its encoded form."""
        run_job(roundtrip(payload))
