"""Helpers for your tests, like Rails' ``ActiveJob::TestHelper``: record enqueued jobs, run them, assert on them.

With pytest::

    from kafka_jobs.testing import assert_enqueued, capture_jobs, perform_enqueued_jobs

    def test_signup_sends_welcome_mail():
        with capture_jobs():
            signup("ada@example.com")
            assert_enqueued(WelcomeMailJob, args=["ada@example.com"])
            assert perform_enqueued_jobs() == 1

With Django's ``TestCase``, mix in ``JobsTestMixin`` (or subclass ``JobsTestCase``).

Jobs enqueued inside ``transaction.atomic()`` are recorded only when the transaction commits, exactly as
the real backends dispatch them. Django's ``TestCase`` (and pytest-django's ``django_db`` without
``transaction=True``) wraps every test in a transaction that never commits, so wrap the code under test in
``self.captureOnCommitCallbacks(execute=True)`` (pytest-django: the ``django_capture_on_commit_callbacks``
fixture), or set ``enqueue_after_commit = False`` on the job class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.test import TestCase, override_settings

from .backends import get_backend
from .backends.recording import RecordingBackend
from .conf import get_settings
from .exceptions import ConfigurationError
from .job import Job

__all__ = [
    "JobsTestCase",
    "JobsTestMixin",
    "assert_enqueued",
    "assert_no_enqueued_jobs",
    "capture_jobs",
    "clear_enqueued_jobs",
    "enqueued_jobs",
    "perform_enqueued_jobs",
]


@contextlib.contextmanager
def capture_jobs() -> Iterator[RecordingBackend]:
    """Switch ``JOB_BACKEND`` to ``"test"`` and yield the recording backend (a fresh one, no jobs recorded).

    Usable as ``with capture_jobs() as backend:`` or as a function decorator. Jobs enqueued inside
    ``transaction.atomic()`` are recorded when it commits (see the module docstring for ``TestCase``).
    """
    with override_settings(JOB_BACKEND="test"):
        yield _recording_backend()


def _recording_backend() -> RecordingBackend:
    backend = get_backend()
    if not isinstance(backend, RecordingBackend):
        raise ConfigurationError(
            f"kafka_jobs.testing needs JOB_BACKEND = 'test', but it is {get_settings().backend!r}. Use "
            "`with capture_jobs():`, JobsTestMixin, or override_settings(JOB_BACKEND='test')."
        )
    return backend


def enqueued_jobs(job_class: type[Job] | None = None) -> list[Job]:
    """Return the jobs enqueued and not yet performed (only instances of ``job_class`` if given), oldest first."""
    jobs = _recording_backend().enqueued_jobs()
    return [job for job in jobs if job_class is None or isinstance(job, job_class)]


def perform_enqueued_jobs(only: type[Job] | None = None) -> int:
    """Run the enqueued jobs (only instances of ``only`` if given), and the jobs they enqueue; return the count.

    Jobs run from their encoded form, as a worker would run them; their exceptions propagate.
    """
    return _recording_backend().perform_enqueued(only)


def clear_enqueued_jobs() -> None:
    """Forget every enqueued and performed job."""
    _recording_backend().clear()


def assert_enqueued(
    job_class: type[Job],
    *,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
    count: int | None = None,
) -> list[Job]:
    """Assert that matching jobs were enqueued (at least one, or exactly ``count``); return them.

    ``args``, ``kwargs`` and ``queue`` must equal the job's when given. The ``AssertionError`` lists what
    was enqueued.
    """
    matching = [
        job
        for job in enqueued_jobs(job_class)
        if (args is None or job.args == list(args))
        and (kwargs is None or job.kwargs == dict(kwargs))
        and (queue is None or job.queue_name == queue)
    ]
    if (count is None and not matching) or (count is not None and len(matching) != count):
        given = (("args", args), ("kwargs", kwargs), ("queue", queue))
        criteria = [f"{name}={value!r}" for name, value in given if value is not None]
        wanted = "at least 1" if count is None else f"exactly {count}"
        where = f" with {', '.join(criteria)}" if criteria else ""
        raise AssertionError(
            f"Expected {wanted} {job_class.job_name} job(s){where} to be enqueued, found {len(matching)}."
            + _describe_enqueued()
        )
    return matching


def assert_no_enqueued_jobs(job_class: type[Job] | None = None) -> None:
    """Assert that no job (of ``job_class``, if given) is enqueued; the ``AssertionError`` lists those that are."""
    found = enqueued_jobs(job_class)
    if found:
        what = "jobs" if job_class is None else f"{job_class.job_name} jobs"
        raise AssertionError(f"Expected no {what} to be enqueued, found {len(found)}." + _describe_enqueued())


def _describe_enqueued() -> str:
    jobs = enqueued_jobs()
    lines = [f"\nEnqueued jobs ({len(jobs)}):" if jobs else "\nNo jobs are enqueued."]
    lines += [f"  - {job.job_name}(args={job.args!r}, kwargs={job.kwargs!r}, queue={job.queue_name!r})" for job in jobs]
    connection = connections[DEFAULT_DB_ALIAS]
    pending = len(connection.run_on_commit) if connection.in_atomic_block else 0
    if pending:
        lines.append(
            f"{pending} on_commit callback(s) wait for the current transaction to commit: jobs enqueued inside "
            "transaction.atomic() (TestCase runs each test in one) are recorded at commit. Wrap the code in "
            "self.captureOnCommitCallbacks(execute=True) (pytest-django: django_capture_on_commit_callbacks)."
        )
    return "\n".join(lines)


class JobsTestMixin:
    """Mix into a Django ``TestCase``: each test runs with ``JOB_BACKEND = "test"`` and no recorded jobs.

    ``self.jobs_backend`` is the recording backend. Jobs enqueued in the test's transaction are recorded at
    commit: wrap the code in ``self.captureOnCommitCallbacks(execute=True)``.
    """

    jobs_backend: RecordingBackend

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.jobs_backend = self.enterContext(capture_jobs())  # type: ignore[attr-defined]

    enqueued_jobs = staticmethod(enqueued_jobs)
    perform_enqueued_jobs = staticmethod(perform_enqueued_jobs)
    clear_enqueued_jobs = staticmethod(clear_enqueued_jobs)
    assert_enqueued = staticmethod(assert_enqueued)
    assert_no_enqueued_jobs = staticmethod(assert_no_enqueued_jobs)


class JobsTestCase(JobsTestMixin, TestCase):
    """A ``TestCase`` with ``JobsTestMixin``."""
