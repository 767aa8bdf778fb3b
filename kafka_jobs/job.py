"""The ``Job`` base class: what users subclass, enqueue and run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from collections.abc import Iterable
from typing import Any, ClassVar, Self

from django.utils import timezone

from . import registry
from .exceptions import InvalidJob
from .ids import new_job_id
from .options import KafkaOptions, validate_queue_name
from .retry import RetryPolicy, parse_discard_on, parse_retry_on
from .validators import int_at_least_rule, is_int_at_least, is_number


@dataclasses.dataclass(frozen=True)
class MessageInfo:
    """Where the message of a running job lives in Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None


class Job:
    """Subclass to define a background job: set ``queue_as``, implement ``perform``.

    Class attributes (all optional, validated when the subclass is defined):
        queue_as: the queue (Kafka topic, before the prefix); default ``"default"``.
        kafka_options: dict of ``dispatch_method``, ``dispatch_many_method``, ``partitioner``,
            ``partition_key_type``; merged over the parent's options (copy-on-write).
        retry_on / discard_on: per-exception retry and discard rules (see ``kafka_jobs.retry``).
        enqueue_after_commit: inside a transaction, dispatch when it commits (and never if it rolls back)
            rather than at once (``None``: the ``ENQUEUE_AFTER_COMMIT`` setting). Decided for each job,
            also within one ``perform_all_later`` batch.
        job_name: the registered name written into messages (default ``module.QualName``).
        abstract: ``True`` on a base class that is not itself a job.
    """

    job_name: ClassVar[str] = "kafka_jobs.job.Job"
    queue_as: ClassVar[str] = "default"
    kafka_options: ClassVar[Any] = {}
    options: ClassVar[KafkaOptions] = KafkaOptions()
    retry_on: ClassVar[Any] = ()
    discard_on: ClassVar[Any] = ()
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy()
    enqueue_after_commit: ClassVar[bool | None] = None
    abstract: ClassVar[bool] = True
    # False for a class whose queue is chosen at each enqueue (TaskJob: the task's queue_name), so the
    # check that ``queue_as`` is routed (kafka_jobs.W001) does not apply to it.
    check_queue: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = cls.__qualname__
        declared = cls.__dict__
        if "job_name" not in declared:
            cls.job_name = f"{cls.__module__}.{cls.__qualname__}"
        validate_queue_name(owner, cls.queue_as)
        parent_options: KafkaOptions = super(cls, cls).options  # type: ignore[misc]  # nearest base's options
        cls.options = parent_options.merged(declared.get("kafka_options", {}), owner)
        cls.retry_policy = cls.retry_policy.extended(
            parse_retry_on(owner, declared.get("retry_on", ())),
            parse_discard_on(owner, declared.get("discard_on", ())),
        )
        if declared.get("enqueue_after_commit") not in (None, True, False):
            raise InvalidJob(f"{owner}.enqueue_after_commit must be True, False or None.")
        if "abstract" not in declared:
            cls.abstract = False
        if not cls.abstract:
            if cls.perform is Job.perform:
                raise InvalidJob(f"{owner} must implement perform(self, *args, **kwargs).")
            if inspect.iscoroutinefunction(cls.perform):
                # It would "succeed" at once, returning a coroutine that never runs: the job would be lost.
                raise InvalidJob(f"{owner}.perform is async; jobs run in worker threads: define it with plain def.")
            registry.register(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._setup(list(args), kwargs, new_job_id())  # kwargs: a new dict at every call already

    @classmethod
    def restore(cls, args: list[Any], kwargs: dict[str, Any], job_id: str) -> Self:
        """Rebuild a job that already has an id (from a message), without generating a new one."""
        job = cls.__new__(cls)
        job._setup(args, kwargs, job_id)
        return job

    # Per-job state. The defaults live on the class, so a new job sets only what differs (enqueue cost).
    executions: int = 0
    enqueued_at: dt.datetime | None = None
    scheduled_at: dt.datetime | None = None
    # A relative wait (``set(wait=...)``): the backend turns it into ``scheduled_at`` at each enqueue.
    scheduled_wait: dt.timedelta | None = None
    locale: str | None = None
    timezone: str | None = None
    partition_key: Any = None
    partition: int | None = None
    # Per-call outbox choice (``set(outbox=...)``): None, True, False or a database alias.
    outbox: bool | str | None = None
    message: MessageInfo | None = None
    successfully_enqueued: bool = False
    last_duration: float | None = None
    # Custom context carried from enqueue to perform (kafka_jobs.ops.context): key -> JSON value.
    context: dict[str, Any] | None = None

    def _setup(self, args: list[Any], kwargs: dict[str, Any], job_id: str) -> None:
        self.args: list[Any] = args
        self.kwargs: dict[str, Any] = kwargs
        self.job_id: str = job_id
        self.queue_name: str = type(self).queue_as

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.job_id} queue={self.queue_name!r}>"

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        """Do the work; called with the arguments given to ``perform_later``."""
        raise NotImplementedError

    # Enqueueing -----------------------------------------------------------------------------------------

    @classmethod
    def perform_later(cls, *args: Any, **kwargs: Any) -> Self:
        """Enqueue a job with these arguments on the configured backend and return it (with its id)."""
        return cls(*args, **kwargs).enqueue()

    @classmethod
    def perform_now(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the job in this process now and return what ``perform`` returns; errors propagate."""
        from .execution import run_job

        return run_job(cls(*args, **kwargs))

    @classmethod
    def set(
        cls,
        *,
        queue: str | None = None,
        wait: dt.timedelta | float | None = None,
        wait_until: dt.datetime | None = None,
        partition_key: Any = None,
        partition: int | None = None,
        outbox: bool | str | None = None,
    ) -> ConfiguredJob:
        """Override options for one enqueue: ``ExampleJob.set(queue="low").perform_later(...)``.

        ``outbox``: True/False overrides the class's and the global outbox choice; a database alias also
        chooses the database the row is written to (by default the one whose transaction is open).
        """
        return ConfiguredJob(
            cls,
            queue=queue,
            wait=wait,
            wait_until=wait_until,
            partition_key=partition_key,
            partition=partition,
            outbox=outbox,
        )

    def enqueue(self) -> Self:
        """Enqueue this job instance on the configured backend and return it."""
        backends.get_backend().enqueue(self)
        return self

    def run(self) -> Any:
        """Call ``perform`` with this job's arguments (the worker wraps this with context and signals)."""
        return self.perform(*self.args, **self.kwargs)


class ConfiguredJob:
    """A job class with per-call overrides, as returned by ``Job.set(...)``; validated here, applied per enqueue.

    ``wait`` stays relative: the due time is counted from each enqueue, so a ``ConfiguredJob`` kept (at
    module level, say) and used later still waits the full time, as in Rails. ``wait_until`` is absolute.
    """

    def __init__(
        self,
        job_class: type[Job],
        *,
        queue: str | None,
        wait: dt.timedelta | float | None,
        wait_until: dt.datetime | None,
        partition_key: Any,
        partition: int | None,
        outbox: bool | str | None = None,
    ) -> None:
        owner = f"{job_class.__qualname__}.set()"
        if queue is not None:
            validate_queue_name(owner, queue)
        if wait is not None and wait_until is not None:
            raise InvalidJob(f"{owner}: pass wait or wait_until, not both.")
        if is_number(wait):
            wait = dt.timedelta(seconds=wait)
        if wait is not None and not isinstance(wait, dt.timedelta):
            raise InvalidJob(f"{owner}: wait must be a timedelta or seconds, got {wait!r}.")
        if wait_until is not None and not (isinstance(wait_until, dt.datetime) and timezone.is_aware(wait_until)):
            raise InvalidJob(f"{owner}: wait_until must be a timezone-aware datetime, got {wait_until!r}.")
        if partition is not None and not is_int_at_least(partition, 0):
            raise InvalidJob(f"{owner}: partition must be {int_at_least_rule(0)}, got {partition!r}.")
        if not (outbox is None or isinstance(outbox, bool) or (isinstance(outbox, str) and outbox)):
            raise InvalidJob(f"{owner}: outbox must be True, False or a database alias, got {outbox!r}.")
        self.job_class = job_class
        self.queue = queue
        self.wait: dt.timedelta | None = wait
        self.wait_until = wait_until
        self.partition_key = partition_key
        self.partition = partition
        self.outbox = outbox

    def build(self, *args: Any, **kwargs: Any) -> Job:
        """Return a job instance with the overrides applied (not enqueued; a ``wait`` counts from its enqueue)."""
        job = self.job_class(*args, **kwargs)
        if self.queue is not None:
            job.queue_name = self.queue
        job.scheduled_at = self.wait_until
        job.scheduled_wait = self.wait
        job.partition_key = self.partition_key
        job.partition = self.partition
        job.outbox = self.outbox
        return job

    def perform_later(self, *args: Any, **kwargs: Any) -> Job:
        """Enqueue with the overrides and return the job."""
        return self.build(*args, **kwargs).enqueue()

    def perform_now(self, *args: Any, **kwargs: Any) -> Any:
        """Run now in this process (queue and wait do not apply)."""
        from .execution import run_job

        return run_job(self.build(*args, **kwargs))


def perform_all_later(jobs: Iterable[Job]) -> int:
    """Enqueue job instances in one batch (``dispatch_many_method``) and return how many were enqueued.

    Every job is validated and encoded before any is dispatched, so a bad one stops the whole batch.

    Order: the batch is dispatched in the order given, whatever each class's dispatch method, so jobs
    that share a partition run in that order. Inside a transaction each job follows its own
    ``enqueue_after_commit``: the jobs that wait are dispatched when it commits (never, if it rolls back),
    the others at once. Each of the two groups keeps the batch's order, and the jobs sent at once go
    before the waiting ones, wherever they stood; a batch whose jobs all decide alike keeps its order.
    """
    batch = list(jobs)
    for job in batch:
        if not isinstance(job, Job):
            raise InvalidJob(f"perform_all_later takes Job instances, got {type(job).__name__}.")
    return backends.get_backend().enqueue_many(batch) if batch else 0


# Imported last: the backends import this module (bound here, not in each call: enqueueing is a hot path).
from . import backends  # noqa: E402
