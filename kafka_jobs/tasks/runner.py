"""Run a ``TaskJob``'s task in a job thread and keep its ``TaskResult`` through every status.

Statuses, as Django defines them: READY when enqueued (and again while a failed run waits for its retry),
RUNNING while a run is in progress, SUCCESSFUL with the return value, FAILED once no retry follows (dead
lettered, discarded, or a critical error). Django's signals: ``task_enqueued`` when the message is
dispatched (after the commit, with ``ENQUEUE_AFTER_COMMIT``), ``task_started`` at each run,
``task_finished`` once, when the task succeeds or fails for good.

The run's outcome reaches this module through kafka_jobs' own signals (``job_enqueued``, ``job_failed``
with ``will_retry``), because only the worker knows whether a failure will be retried.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from traceback import format_exception
from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from .. import signals
from .compat import (
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultStatus,
    normalize_json,
    task_enqueued,
    task_finished,
    task_started,
)
from .job import TaskJob
from .results import local_time

MAX_WORKER_ID = 64  # characters, as Django's database backend stores them


def worker_id() -> str:
    """Return this process's worker id, ``host:pid`` (what ``TaskResult.worker_ids`` lists)."""
    return f"{socket.gethostname()}:{os.getpid()}"[-MAX_WORKER_ID:]


def set_fields(result: TaskResult, **fields: Any) -> None:
    """Change fields of a (frozen) ``TaskResult``, as Django's own backends do."""
    for name, value in fields.items():
        object.__setattr__(result, name, value)


def attempt_worker_ids(earlier: list[str], me: str, executions: int) -> list[str]:
    """Return ``worker_ids`` for execution number ``executions`` run by ``me``: exactly ``executions`` ids.

    ``TaskContext.attempt`` is ``len(worker_ids)``, and it must be the execution count the worker keeps
    (what decides retries and dead letters). Earlier runs' ids come from the stored result; runs it does
    not know of (results off, or a run cut short by a crash) are counted as this worker's.
    """
    known = earlier[-(executions - 1) :] if executions > 1 else []
    return [me] * (executions - 1 - len(known)) + known + [me]


def running_result(job: TaskJob, now: dt.datetime) -> TaskResult:
    """Return the RUNNING result of this run of ``job``, built on the stored one if results are kept."""
    backend = job.task_backend
    stored = backend.results.load(job.job_id)
    task = job.bound_task()
    return TaskResult(
        task=task,
        id=job.job_id,
        status=TaskResultStatus.RUNNING,
        enqueued_at=stored.enqueued_at if stored else local_time(job.enqueued_at),
        started_at=stored.started_at if stored and stored.started_at else now,
        finished_at=None,
        last_attempted_at=now,
        args=job.task_args,
        kwargs=job.task_kwargs,
        backend=backend.alias,
        errors=list(stored.errors) if stored else [],
        worker_ids=attempt_worker_ids(list(stored.worker_ids) if stored else [], worker_id(), job.executions),
    )


def run_task(job: TaskJob) -> Any:
    """Run ``job``'s task once and return its JSON-normalized return value; the task's errors propagate."""
    backend = job.task_backend
    result = running_result(job, timezone.now())
    job.task_result = result
    backend.results.save(result)
    task_started.send(type(backend), task_result=result)
    task = result.task
    if task.takes_context:
        value = task.call(TaskContext(task_result=result), *result.args, **result.kwargs)
    else:
        value = task.call(*result.args, **result.kwargs)
    value = normalize_json(value)  # a value JSON cannot hold fails the task, as in Django's backends
    set_fields(result, _return_value=value, status=TaskResultStatus.SUCCESSFUL, finished_at=timezone.now())
    backend.results.save(result)
    task_finished.send(type(backend), task_result=result)
    return value


def task_error(exc: BaseException) -> TaskError:
    """Return Django's record of ``exc``: its class path and traceback."""
    kind = type(exc)
    return TaskError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}", traceback="".join(format_exception(exc))
    )


@receiver(signals.job_enqueued, sender=TaskJob, dispatch_uid="kafka_jobs.tasks.runner.enqueued")
def _enqueued(sender: type[TaskJob], job: TaskJob, **_: Any) -> None:
    """The message was dispatched: send Django's ``task_enqueued``."""
    if job.task_result is not None:
        task_enqueued.send(type(job.task_backend), task_result=job.task_result)


@receiver(signals.job_failed, sender=TaskJob, dispatch_uid="kafka_jobs.tasks.runner.failed")
def _failed(sender: type[TaskJob], job: TaskJob, exception: BaseException, will_retry: bool, **_: Any) -> None:
    """A run failed: READY again if the worker retries it, else FAILED (and ``task_finished``)."""
    result = job.task_result
    if result is None or result.status not in (TaskResultStatus.RUNNING, TaskResultStatus.SUCCESSFUL):
        return  # failed before it started (e.g. its queue is no longer in QUEUES): only the logs tell
    result.errors.append(task_error(exception))
    if will_retry:
        set_fields(result, status=TaskResultStatus.READY)
        job.task_backend.results.save(result)
        return
    set_fields(result, status=TaskResultStatus.FAILED, finished_at=timezone.now())
    job.task_backend.results.save(result)
    task_finished.send(type(job.task_backend), task_result=result)
