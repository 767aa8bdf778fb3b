"""kafka_jobs.testing: capture_jobs, the enqueued-job assertions and the TestCase mixin."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import SimpleTestCase, override_settings

from kafka_jobs import ConfigurationError, Job
from kafka_jobs.backends import get_backend
from kafka_jobs.backends.recording import RecordingBackend
from kafka_jobs.testing import (
    JobsTestCase,
    JobsTestMixin,
    assert_enqueued,
    assert_no_enqueued_jobs,
    capture_jobs,
    clear_enqueued_jobs,
    enqueued_jobs,
    perform_enqueued_jobs,
)

performed: list[Any] = []


class MailJob(Job):
    def perform(self, to: str, *, template: str = "welcome") -> None:
        performed.append(("mail", to, template))


class UrgentMailJob(MailJob):
    queue_as = "single"


class ReportJob(Job):
    def perform(self, month: int) -> None:
        performed.append(("report", month))


class BrokenJob(Job):
    def perform(self) -> None:
        raise ValueError("broken job")


@pytest.fixture(autouse=True)
def _clear_performed() -> None:
    performed.clear()


# capture_jobs --------------------------------------------------------------------------------------------


@override_settings(JOB_BACKEND="inline")
def test_capture_jobs_switches_to_a_fresh_recording_backend_and_back() -> None:
    with capture_jobs() as backend:
        assert isinstance(backend, RecordingBackend)
        assert get_backend() is backend
        MailJob.perform_later("a@example.com")
        assert performed == []

    MailJob.perform_later("b@example.com")
    assert performed == [("mail", "b@example.com", "welcome")]  # inline again


def test_capture_jobs_starts_with_nothing_recorded() -> None:
    with capture_jobs():
        MailJob.perform_later("a@example.com")
    with capture_jobs():
        assert enqueued_jobs() == []


@capture_jobs()
def test_capture_jobs_works_as_a_decorator() -> None:
    MailJob.perform_later("a@example.com")

    assert len(enqueued_jobs()) == 1


# enqueued_jobs / perform_enqueued_jobs / clear_enqueued_jobs ---------------------------------------------


def test_enqueued_jobs_filters_by_class_including_subclasses() -> None:
    with capture_jobs():
        mail = MailJob.perform_later("a")
        urgent = UrgentMailJob.perform_later("b")
        report = ReportJob.perform_later(5)

        assert enqueued_jobs() == [mail, urgent, report]
        assert enqueued_jobs(MailJob) == [mail, urgent]
        assert enqueued_jobs(UrgentMailJob) == [urgent]
        assert enqueued_jobs(ReportJob) == [report]


def test_perform_enqueued_jobs_runs_them_and_returns_the_count() -> None:
    with capture_jobs() as backend:
        MailJob.perform_later("a", template="reset")
        ReportJob.perform_later(5)

        assert perform_enqueued_jobs(only=ReportJob) == 1
        assert performed == [("report", 5)]
        assert perform_enqueued_jobs() == 1
        assert performed == [("report", 5), ("mail", "a", "reset")]
        assert enqueued_jobs() == []
        assert [type(job) for job in backend.performed] == [ReportJob, MailJob]
        assert perform_enqueued_jobs() == 0


def test_perform_enqueued_jobs_propagates_job_errors() -> None:
    with capture_jobs():
        BrokenJob.perform_later()

        with pytest.raises(ValueError, match="broken job"):
            perform_enqueued_jobs()


def test_clear_enqueued_jobs_forgets_everything() -> None:
    with capture_jobs() as backend:
        MailJob.perform_later("a")
        ReportJob.perform_later(1)
        perform_enqueued_jobs(only=ReportJob)

        clear_enqueued_jobs()

        assert enqueued_jobs() == []
        assert backend.performed == []


# assert_enqueued / assert_no_enqueued_jobs ---------------------------------------------------------------


def test_assert_enqueued_matches_class_args_kwargs_and_queue() -> None:
    with capture_jobs():
        job = MailJob.perform_later("a@example.com", template="reset")
        UrgentMailJob.perform_later("b@example.com")

        assert assert_enqueued(MailJob, args=["a@example.com"]) == [job]
        assert assert_enqueued(MailJob, args=("a@example.com",), kwargs={"template": "reset"}) == [job]
        assert_enqueued(MailJob, count=2)
        assert_enqueued(MailJob, queue="single", count=1)
        assert_enqueued(UrgentMailJob, args=["b@example.com"], kwargs={})


def test_assert_enqueued_failure_lists_what_was_enqueued() -> None:
    with capture_jobs():
        MailJob.perform_later("a@example.com", template="reset")
        ReportJob.perform_later(3)

        with pytest.raises(AssertionError) as info:
            assert_enqueued(MailJob, args=["z@example.com"])

    message = str(info.value)
    assert "Expected at least 1 tests.unit.test_testing.MailJob job(s) with args=['z@example.com']" in message
    assert "found 0" in message
    assert "Enqueued jobs (2):" in message
    assert "tests.unit.test_testing.MailJob(args=['a@example.com'], kwargs={'template': 'reset'}" in message
    assert "tests.unit.test_testing.ReportJob(args=[3], kwargs={}, queue='default')" in message


@pytest.mark.parametrize(
    ("criteria", "fragment"),
    [
        ({"count": 2}, "Expected exactly 2"),
        ({"kwargs": {"template": "other"}}, "with kwargs={'template': 'other'}"),
        ({"queue": "single"}, "with queue='single'"),
        ({"count": 0}, "Expected exactly 0"),
    ],
)
def test_assert_enqueued_fails_when_criteria_do_not_match(criteria: dict[str, Any], fragment: str) -> None:
    with capture_jobs():
        MailJob.perform_later("a@example.com")

        with pytest.raises(AssertionError, match=fragment):
            assert_enqueued(MailJob, **criteria)


def test_assert_enqueued_with_nothing_enqueued_says_so() -> None:
    with capture_jobs(), pytest.raises(AssertionError, match="No jobs are enqueued"):
        assert_enqueued(ReportJob)


def test_assert_no_enqueued_jobs() -> None:
    with capture_jobs():
        assert_no_enqueued_jobs()
        MailJob.perform_later("a")

        assert_no_enqueued_jobs(ReportJob)
        with pytest.raises(AssertionError, match=r"no jobs to be enqueued, found 1\.\nEnqueued jobs \(1\)"):
            assert_no_enqueued_jobs()
        with pytest.raises(AssertionError, match=r"no tests\.unit\.test_testing\.MailJob jobs"):
            assert_no_enqueued_jobs(MailJob)

        perform_enqueued_jobs()
        assert_no_enqueued_jobs()


@pytest.mark.django_db
def test_failure_inside_a_transaction_explains_on_commit() -> None:
    with capture_jobs():
        MailJob.perform_later("a")  # pytest-django's django_db test runs in a transaction: deferred

        assert enqueued_jobs() == []
        with pytest.raises(AssertionError, match=r"1 on_commit callback\(s\).*captureOnCommitCallbacks"):
            assert_enqueued(MailJob)


@pytest.mark.django_db
def test_on_commit_callbacks_fixture_records_deferred_jobs(django_capture_on_commit_callbacks: Any) -> None:
    with capture_jobs():
        with django_capture_on_commit_callbacks(execute=True):
            MailJob.perform_later("a")

        assert_enqueued(MailJob, args=["a"])


@pytest.mark.django_db(transaction=True)
def test_jobs_from_a_committed_transaction_are_recorded() -> None:
    with capture_jobs():
        with transaction.atomic():
            MailJob.perform_later("a")
        assert_enqueued(MailJob, count=1)


# Wrong backend -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "helper",
    [
        enqueued_jobs,
        perform_enqueued_jobs,
        clear_enqueued_jobs,
        lambda: assert_enqueued(MailJob),
        assert_no_enqueued_jobs,
    ],
)
def test_helpers_refuse_another_backend(helper: Any) -> None:
    with (
        override_settings(JOB_BACKEND="inline"),
        pytest.raises(ConfigurationError, match=r"needs JOB_BACKEND = 'test', but it is 'inline'.*capture_jobs"),
    ):
        helper()


# JobsTestMixin / JobsTestCase ----------------------------------------------------------------------------


@override_settings(JOB_BACKEND="inline")
class JobsTestMixinTests(JobsTestMixin, SimpleTestCase):
    """The mixin switches to the test backend even when the class is configured otherwise."""

    def test_uses_the_recording_backend(self) -> None:
        self.assertIsInstance(self.jobs_backend, RecordingBackend)
        self.assertIs(get_backend(), self.jobs_backend)
        MailJob.perform_later("a")
        self.assert_enqueued(MailJob, args=["a"])
        self.assertEqual(performed, [])

    def test_each_test_starts_empty_first(self) -> None:
        self.assert_no_enqueued_jobs()
        ReportJob.perform_later(1)

    def test_each_test_starts_empty_second(self) -> None:
        self.assert_no_enqueued_jobs()
        ReportJob.perform_later(2)

    def test_perform_enqueued_jobs(self) -> None:
        ReportJob.perform_later(7)
        self.assertEqual(self.perform_enqueued_jobs(), 1)
        self.assertEqual(performed, [("report", 7)])


class JobsTestCaseTests(JobsTestCase):
    """In a TestCase (one transaction per test) jobs are recorded when the on_commit callbacks run."""

    def test_jobs_wait_for_the_test_transaction(self) -> None:
        MailJob.perform_later("a")
        self.assertEqual(self.enqueued_jobs(), [])

    def test_capture_on_commit_callbacks_records_them(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            MailJob.perform_later("a")
        self.assert_enqueued(MailJob, args=["a"])
        self.assertEqual(self.perform_enqueued_jobs(), 1)
        self.assertEqual(performed, [("mail", "a", "welcome")])
