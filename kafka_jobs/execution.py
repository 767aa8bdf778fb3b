"""Run one job in this process: restore its context, send signals, time it.

Shared by every backend and the worker, so a job behaves the same however it is run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from time import monotonic
from typing import Any

from django.utils import timezone, translation

from . import activelocale, signals
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


_worker_thread = threading.local()  # "primed", "defaults", "dedicated": see dedicate_thread and worker_thread_context


def dedicate_thread() -> None:
    """Mark the calling thread as a job thread: between two jobs only the worker's own code runs on it.

    On such a thread ``worker_thread_context`` remembers that the last job left the defaults active and
    does not read them again before the next job (two ``asgiref`` lookups, about 2.4 µs), unless code outside
    the job could have changed them since: receivers of ``job_started`` / ``job_succeeded`` (checked
    before each job) or of the failure signals (``forget_thread_state``), or a change of the settings.
    """
    _worker_thread.dedicated = True


def forget_thread_state() -> None:
    """Say that code outside a job (a signal receiver) ran on this thread: read its state before the next job."""
    _worker_thread.defaults = None


class worker_thread_context:  # named like the function it replaced: callers pass it as a context factory
    """Like ``job_context``, for a thread that only runs jobs: afterwards the thread has the defaults again.

    There is no caller's state to restore, so each side only checks the thread's language and time zone
    and activates what differs: reading them costs less than activating, and a job usually has the
    defaults (a job that activates another language is still reset after it). On a dedicated job thread
    (``dedicate_thread``) the check before a job is skipped when the defaults are known to be active. The
    check after a job that ran with the defaults is skipped when the state of both is the very object it
    was before the job (see ``activelocale.stored``): nothing activated or deactivated anything.
    """

    __slots__ = ("defaults", "job", "mark", "untouched")

    def __init__(self, job: Job) -> None:
        self.job = job

    def __enter__(self) -> None:
        thread = _worker_thread
        self.defaults = defaults = activelocale.defaults()  # the same tuple until a setting changes
        default_language, default_zone = defaults
        job = self.job
        language = job.locale or default_language
        zone = job.timezone or default_zone
        known = getattr(thread, "defaults", None) is defaults and not (
            signals.job_started.receivers or signals.job_succeeded.receivers
        )
        if known and language == default_language and zone == default_zone:
            # Almost every job: nothing to read, nothing to activate; the thread stays known unless it changes.
            self.mark = False
            self.untouched = activelocale.stored() if activelocale.FAST else None
            return
        thread.defaults = None  # until this job's exit has checked them again
        if not known and not getattr(thread, "primed", False):
            # Read while nothing is active, both cost Django an exception each time: activate the defaults.
            translation.activate(default_language)
            timezone.activate(default_zone)
            thread.primed = True
        current_language = default_language if known else translation.get_language()
        current_zone = default_zone if known else timezone.get_current_timezone_name()
        at_defaults = current_language == default_language and current_zone == default_zone
        if current_language != language:
            _activate(job, translation.activate, language, default_language, "unusable locale", job.locale)
            at_defaults = False
        if current_zone != zone:
            _activate(job, timezone.activate, zone, default_zone, "unknown timezone", job.timezone)
            at_defaults = False
        self.mark = True
        self.untouched = activelocale.stored() if at_defaults and activelocale.FAST else None

    def __exit__(self, *exc_info: object) -> None:
        thread = _worker_thread
        untouched = self.untouched
        if untouched is None or activelocale.stored() != untouched:
            thread.defaults = None  # until checked (should activating the defaults fail)
            default_language, default_zone = self.defaults
            if translation.get_language() != default_language:
                translation.activate(default_language)
            if timezone.get_current_timezone_name() != default_zone:
                timezone.activate(default_zone)
        elif not self.mark:
            return  # the thread was known to have the defaults, and nothing changed them
        if getattr(thread, "dedicated", False):
            thread.defaults = self.defaults


def run_job(job: Job, *, report_failure: bool = True, context: Context = job_context) -> Any:
    """Run ``job`` once (``executions`` counts it) and return its result; exceptions propagate.

    With ``report_failure`` a failure sends ``job_failed`` (not retried); the worker passes ``False``
    because only it knows whether the job will be retried. ``context`` applies the job's locale and time
    zone (the worker passes ``worker_thread_context``). A signal without receivers is not sent (it would
    return at once, after building its arguments).
    """
    job_class = type(job)
    job.executions += 1
    if signals.job_started.receivers:
        signals.job_started.send(job_class, job=job, message=job.message)
    started = monotonic()
    try:
        with context(job):
            if job.context:
                with restored(job.context):
                    result = job.run()
            else:  # no custom context: not even a null context manager
                result = job.run()
    except BaseException as exc:
        job.last_duration = monotonic() - started
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
    job.last_duration = monotonic() - started
    if signals.job_succeeded.receivers:
        signals.job_succeeded.send(job_class, job=job, message=job.message, duration=job.last_duration, result=result)
    return result
