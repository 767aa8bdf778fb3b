"""``JOB_BACKEND = "async"`` (the default): run jobs on an in-process thread pool, like Rails' async adapter.

For development only: jobs still queued when the process exits are lost.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections

from .. import clock
from ..conf import get_settings
from ..execution import run_job
from ..job import Job
from .base import BaseBackend, Prepared
from .inline import roundtrip

logger = logging.getLogger("kafka_jobs.backends.async")


def _run(payload: bytes) -> None:
    close_old_connections()
    try:
        job = roundtrip(payload)
        run_job(job)
    except Exception:
        logger.exception("Job failed in the async backend (not retried)")
    finally:
        close_old_connections()


class ThreadPoolBackend(BaseBackend):
    """Run jobs on ``ASYNC_THREADS`` threads of this process; a scheduled job waits on a timer until due."""

    supports_defer = True

    def __init__(self, alias: str) -> None:
        super().__init__(alias)
        self._pool = ThreadPoolExecutor(get_settings().async_threads, thread_name_prefix="kafka-jobs-async")

    def dispatch(self, prepared: Prepared) -> None:
        """Submit the encoded job to the pool, when it is due if it was scheduled with ``set(wait=...)``."""
        job, payload = prepared.job, prepared.payload
        delay = clock.seconds_until(job.scheduled_at)
        if delay <= 0:
            self._pool.submit(_run, payload)
            return
        timer = threading.Timer(delay, self._submit_due, args=(job, payload))
        timer.daemon = True  # like queued jobs, a scheduled job does not outlive the process
        timer.start()

    def _submit_due(self, job: Job, payload: bytes) -> None:
        try:
            self._pool.submit(_run, payload)
        except RuntimeError:  # the backend was closed (settings changed, process exiting) while it waited
            logger.warning("Scheduled %r was not run: the async backend was closed before it was due", job)

    def close(self) -> None:
        """Wait for queued jobs to finish."""
        self._pool.shutdown(wait=True)
