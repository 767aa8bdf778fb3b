"""Run one job in this process: restore its context, send signals, time it.

Shared by every backend and the worker, so a job behaves the same however it is run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from django.conf import settings
from django.utils import timezone, translation

from . import signals
from .job import Job
from .ops.context import restored

logger = logging.getLogger("kafka_jobs.job")

Context = Callable[[Job], AbstractContextManager[None]]


def _warn(job: Job, what: str, value: object, exc: Exception) -> None:
    logger.warning("Job %s %s: %s %r ignored (%s)", job.job_name, job.job_id, what, value, type(exc).__name__)


@contextlib.contextmanager
def job_context(job: Job) -> Iterator[None]:
    """Apply the locale and timezone persisted at enqueue; always reset afterwards (threads never leak).

    A locale or time zone that cannot be applied is logged and ignored: it never fails the job.
    """
    with contextlib.ExitStack() as stack:
        if job.locale:
            try:
                stack.enter_context(translation.override(job.locale))
            except Exception as exc:
                _warn(job, "unusable locale", job.locale, exc)
        if job.timezone:
            try:
                stack.enter_context(timezone.override(job.timezone))
            except Exception as exc:
                _warn(job, "unknown timezone", job.timezone, exc)
        yield


@contextlib.contextmanager
def worker_thread_context(job: Job) -> Iterator[None]:
    """Like ``job_context``, for a thread that only runs jobs: afterwards reset to the defaults.

    There is no caller's state to remember, and reading it costs more than the job's own bookkeeping:
    activating the default language and time zone leaves the thread as an idle worker thread was.
    """
    try:
        translation.activate(job.locale or settings.LANGUAGE_CODE)
    except Exception as exc:
        _warn(job, "unusable locale", job.locale, exc)
        translation.activate(settings.LANGUAGE_CODE)
    try:
        timezone.activate(job.timezone or settings.TIME_ZONE)
    except Exception as exc:
        _warn(job, "unknown timezone", job.timezone, exc)
        timezone.activate(settings.TIME_ZONE)
    try:
        yield
    finally:
        translation.activate(settings.LANGUAGE_CODE)
        timezone.activate(settings.TIME_ZONE)


def run_job(job: Job, *, report_failure: bool = True, context: Context = job_context) -> Any:
    """Run ``job`` once (``executions`` counts it) and return its result; exceptions propagate.

    With ``report_failure`` a failure sends ``job_failed`` (not retried); the worker passes ``False``
    because only it knows whether the job will be retried. ``context`` applies the job's locale and time
    zone (the worker passes ``worker_thread_context``).
    """
    job_class = type(job)
    job.executions += 1
    signals.job_started.send(job_class, job=job, message=job.message)
    started = time.monotonic()
    try:
        with context(job), restored(job.context):
            result = job.run()
    except BaseException as exc:
        job.last_duration = time.monotonic() - started
        if report_failure:
            signals.job_failed.send(
                job_class,
                job=job,
                message=job.message,
                duration=job.last_duration,
                exception=exc,
                will_retry=False,
            )
        raise
    job.last_duration = time.monotonic() - started
    signals.job_succeeded.send(job_class, job=job, message=job.message, duration=job.last_duration, result=result)
    return result
