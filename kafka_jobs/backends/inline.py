"""``JOB_BACKEND = "inline"``: run each job at once in the enqueueing thread (after commit)."""

from __future__ import annotations

from ..execution import run_job
from ..job import Job
from ..serializer import get_serializer
from .base import BaseBackend, Prepared


def roundtrip(payload: bytes) -> Job:
    """Decode an encoded job as the worker would, so in-process backends see what Kafka would deliver."""
    return get_serializer().loads(payload).to_job()


class InlineBackend(BaseBackend):
    """Run jobs synchronously; their errors propagate to the caller.

    A job scheduled for later is refused (``supports_defer`` is false), as Rails' inline adapter does: it
    could only run now. A due time already past runs now.
    """

    def dispatch(self, prepared: Prepared) -> None:
        """Run the job now, from its encoded form."""
        run_job(roundtrip(prepared.payload))
