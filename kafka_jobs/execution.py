"""Run one job in this process: restore its context, send signals, time it.

Shared by every backend and the worker, so a job behaves the same however it is run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
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


def _activate(job: Job, activate: Callable[[str], object], value: str, default: str, what: str, raw: object) -> None:
    """Activate ``value`` (a language or time zone); if it cannot be, log it and activate ``default``."""
    try:
        activate(value)
    except Exception as exc:
        _warn(job, what, raw, exc)
        activate(default)


_worker_thread = threading.local()  # "primed": the defaults were activated once on this thread; see below


def dedicate_thread() -> None:
    """Mark the calling thread as a job thread: between two jobs only the worker's own code runs on it.

    On such a thread ``worker_thread_context`` remembers that the last job left the defaults active and
    does not read them again before the next job (two ``asgiref`` lookups, about 4 µs), unless code outside
    the job could have changed them since: receivers of ``job_started`` / ``job_succeeded`` (checked
    before each job) or of the failure signals (``forget_thread_state``).
    """
    _worker_thread.dedicated = True


def forget_thread_state() -> None:
    """Say that code outside a job (a signal receiver) ran on this thread: read its state before the next job."""
    _worker_thread.defaults = False


class worker_thread_context:  # named like the function it replaced: callers pass it as a context factory
    """Like ``job_context``, for a thread that only runs jobs: afterwards the thread has the defaults again.

    There is no caller's state to restore, so each side only checks the thread's language and time zone
    and activates what differs: reading them costs less than activating, and a job usually has the
    defaults (a job that activates another language is still reset after it). On a dedicated job thread
    (``dedicate_thread``) the check before a job is skipped when the defaults are known to be active.
    """

    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job

    def __enter__(self) -> None:
        thread = _worker_thread
        known = getattr(thread, "defaults", False) and not (
            signals.job_started.receivers or signals.job_succeeded.receivers
        )
        thread.defaults = False  # until this job's exit has checked them again
        if not known and not getattr(thread, "primed", False):
            # Read while nothing is active, both cost Django an exception each time: activate the defaults.
            translation.activate(settings.LANGUAGE_CODE)
            timezone.activate(settings.TIME_ZONE)
            thread.primed = True
        job = self.job
        language = job.locale or settings.LANGUAGE_CODE
        if (language != settings.LANGUAGE_CODE) if known else (translation.get_language() != language):
            _activate(job, translation.activate, language, settings.LANGUAGE_CODE, "unusable locale", job.locale)
        zone = job.timezone or settings.TIME_ZONE
        if (zone != settings.TIME_ZONE) if known else (timezone.get_current_timezone_name() != zone):
            _activate(job, timezone.activate, zone, settings.TIME_ZONE, "unknown timezone", job.timezone)

    def __exit__(self, *exc_info: object) -> None:
        if translation.get_language() != settings.LANGUAGE_CODE:
            translation.activate(settings.LANGUAGE_CODE)
        if timezone.get_current_timezone_name() != settings.TIME_ZONE:
            timezone.activate(settings.TIME_ZONE)
        if getattr(_worker_thread, "dedicated", False):
            _worker_thread.defaults = True


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
