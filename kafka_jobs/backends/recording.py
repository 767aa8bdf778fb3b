"""``JOB_BACKEND = "test"``: record enqueued jobs for assertions (see ``kafka_jobs.testing``)."""

from __future__ import annotations

import threading

from ..execution import run_job
from ..job import Job
from .base import BaseBackend, Prepared
from .inline import roundtrip


class RecordingBackend(BaseBackend):
    """Keep enqueued jobs in memory until ``perform_enqueued_jobs`` runs them or the test clears them.

    Scheduled jobs are recorded with their due time; ``perform_enqueued_jobs`` runs them without waiting.
    """

    supports_defer = True

    def __init__(self, alias: str) -> None:
        super().__init__(alias)
        self._lock = threading.Lock()
        self.enqueued: list[tuple[Job, bytes]] = []
        self.performed: list[Job] = []

    def dispatch(self, prepared: Prepared) -> None:
        """Record the job and its encoded form."""
        with self._lock:
            self.enqueued.append((prepared.job, prepared.payload))

    def enqueued_jobs(self) -> list[Job]:
        """Return the jobs enqueued and not yet performed, oldest first."""
        with self._lock:
            return [job for job, _ in self.enqueued]

    def perform_enqueued(self, only: type[Job] | None = None) -> int:
        """Run recorded jobs (and jobs they enqueue) from their encoded form; return how many ran."""
        ran = 0
        while True:
            with self._lock:
                index = next(
                    (i for i, (job, _) in enumerate(self.enqueued) if only is None or isinstance(job, only)),
                    None,
                )
                if index is None:
                    return ran
                _, payload = self.enqueued.pop(index)
            job = roundtrip(payload)
            run_job(job)
            with self._lock:
                self.performed.append(job)
            ran += 1

    def clear(self) -> None:
        """Forget every recorded job."""
        with self._lock:
            self.enqueued.clear()
            self.performed.clear()
