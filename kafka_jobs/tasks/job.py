"""``TaskJob``: a django.tasks task travelling as a kafka_jobs job, so tasks share everything jobs have.

The envelope is the normal one (job name ``kafka_jobs.tasks.TaskJob``, id = the ``TaskResult`` id, queue
= the task's ``queue_name``, ``scheduled_at`` = its ``run_after``); its kwargs carry the task:
``{"task": module path, "backend": TASKS alias, "args": [...], "kwargs": {...}}``. The producer, routes,
``QUEUE_PREFIX``, partitioning, ``ENQUEUE_AFTER_COMMIT``, the worker, retries, dead letters, signals and
logs are the jobs' own.

Decoding a message resolves the task (``resolver``): a message naming anything but a ``Task`` of an
installed app, or a ``TASKS`` alias that is not a ``KafkaTaskBackend``, is poison (``UnknownTask``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, Self

from django.utils import timezone

from ..exceptions import UnknownTask
from ..job import Job
from .resolver import resolve_task

if TYPE_CHECKING:
    from .backend import KafkaTaskBackend
    from .compat import Task, TaskResult

JOB_NAME = "kafka_jobs.tasks.TaskJob"
_PAYLOAD_KEYS = {"task", "backend", "args", "kwargs"}


class TaskJob(Job):
    """The job that runs one django.tasks task (never subclassed or enqueued directly)."""

    job_name = JOB_NAME
    check_queue: ClassVar[bool] = False

    # Set at enqueue (``for_result``) or when decoded (``restore``):
    task: Task
    task_backend: KafkaTaskBackend
    # The result of the enqueue, or of the run in progress (written by ``runner``).
    task_result: TaskResult | None = None

    @classmethod
    def for_result(cls, result: TaskResult, backend: KafkaTaskBackend) -> Self:
        """Return the job that carries the task of ``result`` (a READY result from ``enqueue``)."""
        task = result.task
        payload = {"task": task.module_path, "backend": backend.alias, "args": result.args, "kwargs": result.kwargs}
        job = cls.__new__(cls)
        job._setup([], payload, result.id)
        job.queue_name = task.queue_name
        run_after = task.run_after
        if run_after is not None and timezone.is_naive(run_after):  # USE_TZ = False: local time
            run_after = timezone.make_aware(run_after)
        job.scheduled_at = run_after
        job.task, job.task_backend, job.task_result = task, backend, result
        return job

    @classmethod
    def restore(cls, args: list[Any], kwargs: dict[str, Any], job_id: str) -> Self:
        """Rebuild the job of a message; raise ``UnknownTask`` unless it names a task this worker may run."""
        if args or set(kwargs) != _PAYLOAD_KEYS:
            raise UnknownTask(f"A {JOB_NAME} message carries kwargs {sorted(_PAYLOAD_KEYS)} and no args.")
        if not isinstance(kwargs["args"], list) or not isinstance(kwargs["kwargs"], dict):
            raise UnknownTask(f"A {JOB_NAME} message's task args must be a list and its kwargs an object.")
        job = super().restore(args, kwargs, job_id)
        job.task = resolve_task(kwargs["task"])
        job.task_backend = _backend(kwargs["backend"])
        return job

    @property
    def task_args(self) -> list[Any]:
        """The task's positional arguments."""
        return self.kwargs["args"]  # type: ignore[no-any-return]

    @property
    def task_kwargs(self) -> dict[str, Any]:
        """The task's keyword arguments."""
        return self.kwargs["kwargs"]  # type: ignore[no-any-return]

    def bound_task(self) -> Task:
        """Return the task as it was enqueued: its backend, queue and due time (validated by the backend)."""
        task, alias = self.task, self.task_backend.alias
        if (task.backend, task.queue_name, task.run_after) == (alias, self.queue_name, self.scheduled_at):
            return task
        return dataclasses.replace(task, backend=alias, queue_name=self.queue_name, run_after=self.scheduled_at)

    def perform(self, **payload: Any) -> Any:
        """Run the task and record its result (see ``runner``)."""
        from .runner import run_task

        return run_task(self)

    def __repr__(self) -> str:
        task = self.kwargs.get("task", "?")
        return f"<TaskJob {self.job_id} task={task} queue={self.queue_name!r}>"


def _backend(alias: object) -> KafkaTaskBackend:
    from .backend import KafkaTaskBackend
    from .compat import task_backends

    if not isinstance(alias, str):
        raise UnknownTask(f"A task message names its TASKS backend with {type(alias).__name__}, not a string.")
    try:
        backend = task_backends[alias]
    except Exception as exc:  # InvalidTaskBackend: not in TASKS, or its class cannot be imported
        raise UnknownTask(f"TASKS has no usable backend {alias!r} in this process: {exc}") from exc
    if not isinstance(backend, KafkaTaskBackend):
        raise UnknownTask(f"TASKS[{alias!r}] is a {type(backend).__name__}, not a KafkaTaskBackend.")
    return backend
