"""django.tasks tasks the tests run (issue 9), in real worker processes or in-process. Each records what it
did as JSON lines, like the jobs in ``tests.jobs``."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async

from kafka_jobs.tasks.compat import TaskContext
from tests.jobs import read_records, record

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the backport
    from django_tasks import task  # type: ignore[no-redef]


class PlannedFailure(Exception):
    """What the failing tasks raise."""


@task
def echo(log: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Record the arguments it ran with and return them."""
    record(log, event="ran", task="echo", args=args, kwargs=kwargs, thread=threading.current_thread().name)
    return {"args": list(args), "kwargs": kwargs}


@task(backend="plain")
def echo_plain(log: str, note: str) -> str:
    """``echo`` on the backend that keeps no results."""
    record(log, event="ran", task="echo_plain", note=note)
    return note


@task(queue_name="dlq")
def always_fails(log: str) -> None:
    """Raise every time (the ``dlq`` route dead-letters after one retry)."""
    record(log, event="ran", task="always_fails")
    raise PlannedFailure("this task always fails")


@task(takes_context=True, queue_name="retry3")
def with_context(context: TaskContext, log: str, failures: int) -> int:
    """Record what the context says; fail on the first ``failures`` attempts."""
    result = context.task_result
    record(
        log,
        event="ran",
        task="with_context",
        attempt=context.attempt,
        result_id=result.id,
        status=str(result.status),
        worker_ids=result.worker_ids,
        errors=[e.exception_class_path for e in result.errors],
    )
    if context.attempt <= failures:
        raise PlannedFailure(f"planned failure on attempt {context.attempt}")
    return context.attempt


@task
async def async_echo(log: str, value: Any) -> Any:
    """An async task: await something, record (with the thread its sync_to_async code runs on), return ``value``."""
    await asyncio.sleep(0)
    sync_thread = await sync_to_async(lambda: threading.current_thread().name)()
    record(log, event="ran", task="async_echo", value=value, sync_thread=sync_thread)
    return value


@task
def wait_for_file(log: str, path: str, timeout: float = 30.0) -> str:
    """Record its start, then work until ``path`` exists (so a test can see the RUNNING status)."""
    record(log, event="started", task="wait_for_file")
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)  # the task's own work: it waits for the test's go-ahead
    return "done"


def plain_function(log: str) -> None:
    """Not a task: a message naming it must never run it."""
    record(log, event="ran", task="plain_function")


def runs(log: str, name: str) -> list[dict[str, Any]]:
    """Return the records of task ``name`` in ``log``."""
    return [r for r in read_records(log) if r.get("task") == name and r.get("event") == "ran"]
