"""The backend contract, after Django's ``BaseTaskBackend``, and the enqueue path every backend shares.

Enqueueing one job (``perform_later``) or a batch (``perform_all_later``) takes the same steps, each a
method a backend may extend:

1. ``prepare(job, now)``: stamp the enqueue time (and turn a relative ``wait`` into the due time),
   ``validate_job``, ``encode``. Every job of a batch is prepared before any is dispatched.
2. ``outbox_database(job)``: a backend that supports the transactional outbox writes the job as a row of
   that database instead (in the caller's transaction); the relay produces it later.
3. ``waits_for_commit(job)``: for each job, dispatch at once or when the current transaction commits.
4. ``dispatch(prepared)`` / ``dispatch_many(batch)``: send. Then each job is marked
   ``successfully_enqueued`` and ``job_enqueued`` is sent.

What a backend can do is stated by its ``supports_*`` flags, as in Django; ``validate_job`` refuses what
it cannot, and ``check()`` reports configuration problems to ``manage.py check``.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.checks import CheckMessage
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .. import clock, signals
from ..conf import BACKENDS, get_settings
from ..exceptions import InvalidJob
from ..job import Job
from ..ops.context import capture as capture_context
from ..options import validate_queue_name
from ..serializer import get_serializer, stamp_context
from ..validators import int_at_least_rule, is_int_at_least, is_queue_name

if TYPE_CHECKING:
    from ..producer import OutgoingMessage


@dataclasses.dataclass(slots=True)
class Prepared:
    """A job ready to dispatch: validated and encoded at enqueue, with what the backend derived from it."""

    job: Job
    payload: bytes
    # The Kafka message (topic, key or partition, headers), for a backend that produces one: built at
    # enqueue, so routing and the partitioner run, and fail, in the caller's context, not at commit.
    message: OutgoingMessage | None = None


class BaseBackend(abc.ABC):
    """A place jobs are sent to. Subclasses implement ``dispatch`` (and may override ``dispatch_many``)."""

    # Can it take a job scheduled for later (``set(wait=...)`` / ``set(wait_until=...)`` in the future)?
    supports_defer: ClassVar[bool] = False
    # Can it hold a job until the surrounding transaction commits (``enqueue_after_commit``)?
    supports_defer_to_commit: ClassVar[bool] = True

    def __init__(self, alias: str) -> None:
        self.alias = alias  # the JOB_BACKEND value that selected it

    # The contract -------------------------------------------------------------------------------------

    def validate_job(self, job: Job) -> None:
        """Raise ``InvalidJob`` if this backend cannot take ``job`` as it is (Django's ``validate_task``)."""
        if not is_queue_name(job.queue_name):  # checked first: the job's repr costs more than the check
            validate_queue_name(repr(job), job.queue_name)
        if job.partition is not None and not is_int_at_least(job.partition, 0):
            raise InvalidJob(f"{job!r}: partition must be {int_at_least_rule(0)}, got {job.partition!r}.")
        due = job.scheduled_at
        if due is None:
            return
        if not (isinstance(due, dt.datetime) and timezone.is_aware(due)):
            raise InvalidJob(f"{job!r}: scheduled_at must be a timezone-aware datetime, got {due!r}.")
        if not self.supports_defer and clock.seconds_until(due) > 0:
            able = ", ".join(repr(alias) for alias in BACKENDS if backend_class(alias).supports_defer)
            raise InvalidJob(
                f"JOB_BACKEND = {self.alias!r} runs jobs at once and cannot run {job!r} at {due}. Use a backend "
                f"that supports scheduled jobs ({able}), or call perform_now()."
            )

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        """Return what ``manage.py check`` should report about this backend's configuration."""
        return []

    def enqueue(self, job: Job) -> Job:
        """Prepare ``job`` now (errors raise here); dispatch it now or when the current transaction commits."""
        stamp_context((job,))
        prepared = self.prepare(job, clock.now())
        alias = self.outbox_database(job)
        if alias is not None:
            self._store([prepared], alias)
        elif _in_transaction() and self.waits_for_commit(job):
            transaction.on_commit(partial(self._send, [prepared], many=False), using=DEFAULT_DB_ALIAS)
        else:
            self._send([prepared], many=False)
        return job

    def enqueue_many(self, jobs: Sequence[Job]) -> int:
        """Enqueue ``jobs`` as one batch; return how many were enqueued (or will be, at commit).

        All are prepared before any is dispatched. Those that go through the outbox are written first (rows
        of one database in one statement); of the others, those that wait for the commit go then, the others
        at once; each group in the batch's order (``perform_all_later`` states the guarantee).
        """
        now = clock.now()
        stamp_context(jobs)
        prepared_all = [self.prepare(job, now) for job in jobs]
        batch = []
        by_database: dict[str, list[Prepared]] = {}
        for prepared in prepared_all:
            alias = self.outbox_database(prepared.job)
            if alias is None:
                batch.append(prepared)
            else:
                by_database.setdefault(alias, []).append(prepared)
        for alias, rows in by_database.items():
            self._store(rows, alias)
        if not batch:
            return len(prepared_all)
        at_once, at_commit = batch, []
        if _in_transaction():
            waits = [self.waits_for_commit(prepared.job) for prepared in batch]
            at_once = [prepared for prepared, wait in zip(batch, waits, strict=True) if not wait]
            at_commit = [prepared for prepared, wait in zip(batch, waits, strict=True) if wait]
        if at_once:
            self._send(at_once, many=True)
        if at_commit:  # after the others, so a failing dispatch above leaves nothing pending for the commit
            transaction.on_commit(partial(self._send, at_commit, many=True), using=DEFAULT_DB_ALIAS)
        return len(prepared_all)

    def prepare(self, job: Job, now: dt.datetime) -> Prepared:
        """Stamp ``job`` as enqueued at ``now``, validate and encode it; nothing is sent yet."""
        job.enqueued_at = now
        if job.context is None:
            job.context = capture_context()  # in the caller's context, before it may be left (on_commit)
        if job.scheduled_wait is not None:
            job.scheduled_at = now + job.scheduled_wait  # counted from the enqueue, not from set()
        self.validate_job(job)
        return Prepared(job, self.encode(job))

    def encode(self, job: Job) -> bytes:
        """Serialize ``job``; raises ``EncodeError`` for bad arguments at enqueue time."""
        return get_serializer().dumps(job)

    def outbox_database(self, job: Job) -> str | None:
        """Return the database alias to write ``job`` to as an outbox row, or None to dispatch it.

        None here: only a backend that produces Kafka messages has an outbox (the others ignore the option).
        """
        return None

    def waits_for_commit(self, job: Job) -> bool:
        """Whether ``job``, enqueued inside a transaction, is dispatched when it commits rather than at once."""
        if not self.supports_defer_to_commit:
            return False
        wanted = job.enqueue_after_commit
        return get_settings().enqueue_after_commit if wanted is None else wanted

    @abc.abstractmethod
    def dispatch(self, prepared: Prepared) -> None:
        """Send one prepared job (``perform_later``)."""

    def dispatch_many(self, batch: Sequence[Prepared]) -> None:
        """Send a batch in its order (``perform_all_later``); by default one job at a time."""
        for prepared in batch:
            self.dispatch(prepared)

    def close(self) -> None:  # noqa: B027 - an optional hook: most backends hold nothing
        """Release resources (settings changed or process exit)."""

    # --------------------------------------------------------------------------------------------------

    def _send(self, batch: Sequence[Prepared], *, many: bool) -> None:
        if many:
            self.dispatch_many(batch)
        else:
            self.dispatch(batch[0])
        _enqueued(batch)

    def _store(self, batch: Sequence[Prepared], alias: str) -> None:
        from ..outbox.store import write

        write(batch, alias)
        # Enqueued once the row is committed: at once outside a transaction.
        if connections[alias].in_atomic_block:
            transaction.on_commit(partial(_enqueued, batch), using=alias)
        else:
            _enqueued(batch)


def _enqueued(batch: Sequence[Prepared]) -> None:
    send = signals.job_enqueued.send
    for prepared in batch:
        job = prepared.job
        job.successfully_enqueued = True
        send(type(job), job=job)


def _in_transaction() -> bool:
    return connections[DEFAULT_DB_ALIAS].in_atomic_block


def backend_class(alias: str) -> type[BaseBackend]:
    """Return the class ``JOB_BACKEND = alias`` selects (imported on first use)."""
    return import_string(BACKENDS[alias])  # type: ignore[no-any-return]
