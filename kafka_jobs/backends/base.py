"""What every backend shares: encoding at enqueue time and deferral to transaction commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .. import signals
from ..conf import get_settings
from ..job import Job
from ..serializer import get_serializer


def seconds_until_due(job: Job) -> float:
    """Return how long a job scheduled with ``set(wait=...)`` must still wait (0 if due or unscheduled)."""
    if job.scheduled_at is None:
        return 0.0
    return max(0.0, (job.scheduled_at - dt.datetime.now(dt.UTC)).total_seconds())


class BaseBackend:
    """A place jobs are sent to. Subclasses implement ``dispatch`` (and may override ``dispatch_many``)."""

    name = "base"
    supports_defer_to_commit = True

    def enqueue(self, job: Job) -> Job:
        """Validate and encode ``job`` now; dispatch it now or after the current transaction commits."""
        payload = self.encode(job)
        self._after_commit(job, lambda: self._dispatch_and_report([job], [payload], many=False))
        return job

    def enqueue_many(self, jobs: Sequence[Job]) -> int:
        """Enqueue ``jobs`` as one batch and return how many were enqueued (or will be, at commit)."""
        payloads = [self.encode(job) for job in jobs]
        self._after_commit(jobs[0], lambda: self._dispatch_and_report(list(jobs), payloads, many=True))
        return len(jobs)

    def encode(self, job: Job) -> bytes:
        """Serialize ``job``; raises ``EncodeError`` for bad arguments at enqueue time."""
        return get_serializer().dumps(job)

    def _after_commit(self, job: Job, dispatch: Callable[[], None]) -> None:
        defer = job.enqueue_after_commit
        if defer is None:
            defer = get_settings().enqueue_after_commit
        if defer and self.supports_defer_to_commit and connections[DEFAULT_DB_ALIAS].in_atomic_block:
            transaction.on_commit(dispatch, using=DEFAULT_DB_ALIAS)
        else:
            dispatch()

    def _dispatch_and_report(self, jobs: list[Job], payloads: list[bytes], *, many: bool) -> None:
        if many:
            self.dispatch_many(jobs, payloads)
        else:
            self.dispatch(jobs[0], payloads[0])
        for job in jobs:
            job.successfully_enqueued = True
            signals.job_enqueued.send(type(job), job=job)

    def dispatch(self, job: Job, payload: bytes) -> None:
        """Send one encoded job."""
        raise NotImplementedError

    def dispatch_many(self, jobs: list[Job], payloads: list[bytes]) -> None:
        """Send several encoded jobs (default: one at a time)."""
        for job, payload in zip(jobs, payloads, strict=True):
            self.dispatch(job, payload)

    def close(self) -> None:
        """Release resources (settings changed or process exit)."""
