"""``JOB_BACKEND = "inline"``: run each job at once in the enqueueing thread (after commit)."""

from __future__ import annotations

from ..execution import run_job
from ..job import Job
from ..serializer import get_serializer
from .base import BaseBackend


def roundtrip(payload: bytes) -> Job:
    """Decode an encoded job as the worker would, so in-process backends see what Kafka would deliver."""
    return get_serializer().loads(payload).to_job()


class InlineBackend(BaseBackend):
    """Run jobs synchronously; their errors propagate to the caller."""

    name = "inline"

    def dispatch(self, job: Job, payload: bytes) -> None:
        """Run the job now, from its encoded form."""
        run_job(roundtrip(payload))
