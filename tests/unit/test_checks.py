"""System checks (``manage.py check``): invalid settings, invalid routes, jobs on unrouted queues."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from kafka_jobs import Job
from kafka_jobs.backends.inline import InlineBackend
from kafka_jobs.checks import check_backend, check_routes, check_settings

ROUTES = "tests.kafka_routes"


class UncheckedQueueJob(Job):
    queue_as = "unrouted-for-checks"

    def perform(self) -> None:
        pass


def ids(messages: list) -> list[str]:
    return [message.id for message in messages]


def all_checks() -> list:
    """What ``manage.py check`` reports for kafka_jobs: the settings, then the backend's own checks."""
    return check_settings() + check_routes() + check_backend()


def test_invalid_settings_report_e001_naming_the_key() -> None:
    with override_settings(KAFKA_JOBS={"ROUTES": ROUTES, "CONCURRENCY": 0}):
        [error] = all_checks()

    assert error.id == "kafka_jobs.E001"
    assert "KAFKA_JOBS['CONCURRENCY']" in error.msg


def test_invalid_backend_reports_e001() -> None:
    with override_settings(JOB_BACKEND="rq"):
        assert ids(all_checks()) == ["kafka_jobs.E001"]


def test_manage_py_check_fails_on_invalid_settings() -> None:
    with (
        override_settings(KAFKA_JOBS={"NOT_A_KEY": 1}),
        pytest.raises(SystemCheckError, match=r"kafka_jobs\.E001.*NOT_A_KEY"),
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_an_unknown_settings_key_is_reported_once_as_e001_not_also_as_a_context_error() -> None:
    with (
        override_settings(KAFKA_JOBS={"ROUTES": ROUTES, "BOOTSTRAP_SERVER": "x"}),
        pytest.raises(SystemCheckError) as raised,
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())

    report = str(raised.value)
    assert "kafka_jobs.E001" in report
    assert "E030" not in report
    assert "Fix KAFKA_JOBS['CONTEXT']" not in report


def test_missing_routes_module_reports_e002_with_the_kafka_backend() -> None:
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={"ROUTES": "tests.no_such_routes"}):
        [error] = all_checks()

    assert error.id == "kafka_jobs.E002"
    assert "tests.no_such_routes" in error.msg


@pytest.mark.parametrize(
    ("source", "error", "line"),
    [
        ("routes = [\n", "SyntaxError", 1),
        ("x = 1\nfrom kafka_jobs.routing import active_job_topik\n", "ImportError", 2),
        ("import no_such_package_for_routes\n", "ModuleNotFoundError", 1),
        ("raise RuntimeError('boom')\n", "RuntimeError: boom", 1),
    ],
)
def test_a_routes_module_that_fails_to_import_reports_e002_naming_the_error_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, error: str, line: int
) -> None:
    (tmp_path / "broken_routes_for_checks.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={"ROUTES": "broken_routes_for_checks"}):
        [message] = all_checks()

    assert message.id == "kafka_jobs.E002"
    assert "'broken_routes_for_checks' failed to import" in message.msg
    assert error in message.msg
    assert f"broken_routes_for_checks.py, line {line})" in message.msg


@pytest.mark.parametrize("backend", ["async", "inline", "test"])
def test_a_broken_routes_module_reports_e002_with_every_backend(backend: str) -> None:
    with override_settings(JOB_BACKEND=backend, KAFKA_JOBS={"ROUTES": "tests.recurring_routes_badcron"}):
        [error] = all_checks()

    assert error.id == "kafka_jobs.E002"
    assert "invalid cron expression 'every day at 3'" in error.msg


@pytest.mark.parametrize("routes", ["tests.no_such_routes", "no_such_package.kafka_routes"])
def test_no_routes_module_is_fine_without_the_kafka_backend(routes: str) -> None:
    with override_settings(JOB_BACKEND="async", KAFKA_JOBS={"ROUTES": routes}):
        assert all_checks() == []


def test_job_on_unrouted_queue_reports_w001_with_the_kafka_backend() -> None:
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={"ROUTES": ROUTES}):
        messages = [m for m in all_checks() if m.obj is UncheckedQueueJob]

    [warning] = messages
    assert warning.id == "kafka_jobs.W001"
    assert "'unrouted-for-checks'" in warning.msg
    assert "active_job_topic('unrouted-for-checks')" in warning.hint


def test_routed_jobs_report_nothing() -> None:
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={"ROUTES": ROUTES}):
        flagged = {m.obj for m in all_checks()}

    from tests.jobs import FailingJob, RecordJob, SlowJob

    assert flagged.isdisjoint({RecordJob, FailingJob, SlowJob})


def test_unrouted_queues_are_not_reported_when_routes_are_not_required() -> None:
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={"ROUTES": ROUTES, "REQUIRE_ROUTE": False}):
        assert all_checks() == []


def test_in_process_backends_do_not_need_routes() -> None:
    with override_settings(JOB_BACKEND="test", KAFKA_JOBS={"ROUTES": "tests.no_such_routes"}):
        assert all_checks() == []


def test_manage_py_check_passes_with_the_test_settings() -> None:
    out = StringIO()
    call_command("check", stdout=out, stderr=StringIO())

    assert "no issues" in out.getvalue()


def test_manage_py_check_reports_what_the_backend_check_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core import checks

    def backend_check(self: InlineBackend, **kwargs: object) -> list[checks.CheckMessage]:
        return [checks.Error(f"{self.alias} backend says no", id="kafka_jobs.E999")]

    monkeypatch.setattr(InlineBackend, "check", backend_check)
    with (
        override_settings(JOB_BACKEND="inline"),
        pytest.raises(SystemCheckError, match=r"kafka_jobs\.E999.*inline backend says no"),
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())
