"""Stored task results (issue 9): the admin pages, ``prunetaskresults``, and reading a result back."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from kafka_jobs.models import TaskResultRecord
from kafka_jobs.tasks.compat import TaskResultDoesNotExist, TaskResultMismatch, TaskResultStatus
from kafka_jobs.testing import capture_jobs, perform_enqueued_jobs
from tests.tasks import PlannedFailure, always_fails, echo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def log(tmp_path: Any) -> str:
    return str(tmp_path / "tasks.log")


def _row(result_id: str, status: str, finished_days_ago: float | None) -> TaskResultRecord:
    finished = timezone.now() - dt.timedelta(days=finished_days_ago) if finished_days_ago is not None else None
    return TaskResultRecord.objects.create(
        id=result_id,
        task_path="tests.tasks.echo",
        backend="default",
        queue_name="default",
        status=status,
        enqueued_at=timezone.now() - dt.timedelta(days=100),
        finished_at=finished,
    )


def test_prune_deletes_finished_results_older_than_days_and_never_unfinished_ones() -> None:
    _row("old-ok", "SUCCESSFUL", 20)
    _row("new-ok", "SUCCESSFUL", 1)
    _row("old-failed", "FAILED", 20)
    _row("ready", "READY", None)
    _row("running", "RUNNING", None)
    out = StringIO()

    call_command("prunetaskresults", "--days", "14", stdout=out)

    assert set(TaskResultRecord.objects.values_list("id", flat=True)) == {"new-ok", "ready", "running"}
    assert "2 task result(s) deleted; 3 stored" in out.getvalue()


def test_prune_keeps_failed_results_longer_with_failed_days_and_dry_run_deletes_nothing() -> None:
    _row("old-ok", "SUCCESSFUL", 20)
    _row("old-failed", "FAILED", 20)
    out = StringIO()

    call_command("prunetaskresults", "--days", "14", "--failed-days", "30", "--dry-run", stdout=out)
    assert TaskResultRecord.objects.count() == 2
    assert "1 task result(s) would be deleted (--dry-run)" in out.getvalue()

    call_command("prunetaskresults", "--days", "14", "--failed-days", "30", stdout=StringIO())
    assert list(TaskResultRecord.objects.values_list("id", flat=True)) == ["old-failed"]


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_prune_refuses_a_bad_number_of_days(value: str) -> None:
    with pytest.raises(CommandError, match="days"):
        call_command("prunetaskresults", "--days", value)


def test_a_result_whose_task_is_gone_does_not_exist() -> None:
    TaskResultRecord.objects.create(id="gone", task_path="tests.tasks.removed", backend="default", queue_name="d")
    with pytest.raises(TaskResultDoesNotExist, match="gone"):
        echo.get_backend().get_result("gone")


def test_a_result_of_another_task_is_a_mismatch(log: str) -> None:
    with capture_jobs():
        result = echo.enqueue(log)
    with pytest.raises(TaskResultMismatch):
        always_fails.get_result(result.id)


def test_the_admin_lists_results_and_shows_one_with_its_traceback_read_only(log: str) -> None:
    with capture_jobs():
        ok = echo.enqueue(log, "shown", note="<b>escaped</b>")
        failed = always_fails.enqueue(log)
        with pytest.raises(PlannedFailure):
            perform_enqueued_jobs()  # runs ok, then failed
    assert echo.get_result(ok.id).status == TaskResultStatus.SUCCESSFUL
    assert always_fails.get_result(failed.id).status == TaskResultStatus.FAILED
    admin_user = User.objects.create_superuser("admin", "a@example.com", "pw")
    client = Client()
    client.force_login(admin_user)

    listing = client.get("/admin/kafka_jobs/taskresultrecord/")
    assert listing.status_code == 200
    assert ok.id in listing.text and failed.id in listing.text
    filtered = client.get("/admin/kafka_jobs/taskresultrecord/?status__exact=FAILED")
    assert failed.id in filtered.text and ok.id not in filtered.text

    page = client.get(f"/admin/kafka_jobs/taskresultrecord/{failed.id}/change/")
    assert page.status_code == 200
    assert "tests.tasks.PlannedFailure" in page.text
    assert "this task always fails" in page.text  # the traceback
    assert 'name="_save"' not in page.text  # read-only
    shown = client.get(f"/admin/kafka_jobs/taskresultrecord/{ok.id}/change/")
    assert "&lt;b&gt;escaped&lt;/b&gt;" in shown.text and "<b>escaped</b>" not in shown.text
    assert client.get("/admin/kafka_jobs/taskresultrecord/add/").status_code == 403


# --- The worker's executor decides; the result follows (READY between retries, FAILED when dead-lettered) --


def test_the_executor_leaves_a_retried_task_ready_and_a_dead_lettered_one_failed(
    log: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kafka_jobs.conf import get_settings
    from kafka_jobs.deadletter import delivery as delivery_module
    from kafka_jobs.routing import active_job_topic
    from kafka_jobs.worker.executor import Executor, Verdict
    from tests.unit.fakes import FakeMessage
    from tests.unit.test_failure_handling import FakeProducer

    monkeypatch.setattr(delivery_module, "DeadLetterProducer", lambda *args: FakeProducer())
    finished: list[str] = []

    def on_finished(sender: Any, task_result: Any, **_: Any) -> None:
        finished.append(str(task_result.status))

    from kafka_jobs.tasks.compat import task_finished

    task_finished.connect(on_finished)
    try:
        with capture_jobs() as recording:
            result = always_fails.enqueue(log)
            _, payload = recording.enqueued[0]
        route = active_job_topic("dlq", dead_letter_queue={"topic": "dlq.dead", "max_retries": 1})
        executor = Executor(get_settings())
        message = FakeMessage("dlq", 0, 7, payload)

        first = executor.process(message, route, 0, lambda: True)
        assert first.verdict is Verdict.RETRY
        result.refresh()
        assert (result.status, len(result.errors), result.attempts) == (TaskResultStatus.READY, 1, 1)
        assert finished == []  # not finished: a retry follows

        second = executor.process(message, route, 1, lambda: True)
        assert second.verdict is Verdict.DONE  # dead-lettered
        result.refresh()
        assert (result.status, len(result.errors), result.attempts) == (TaskResultStatus.FAILED, 2, 2)
        assert result.finished_at is not None
        assert finished == ["FAILED"]
    finally:
        task_finished.disconnect(on_finished)


def test_with_the_outbox_a_task_is_a_row_committed_with_its_ready_result_and_enqueued_at_the_commit(
    log: str,
) -> None:
    from django.conf import settings
    from django.db import transaction

    from kafka_jobs.models import OutboxMessage
    from kafka_jobs.tasks.compat import task_enqueued
    from kafka_jobs.tasks.job import JOB_NAME

    enqueued: list[str] = []

    def on_enqueued(sender: Any, task_result: Any, **_: Any) -> None:
        enqueued.append(task_result.id)

    task_enqueued.connect(on_enqueued)
    try:
        with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={**settings.KAFKA_JOBS, "OUTBOX": True}):
            with transaction.atomic():
                result = echo.enqueue(log, "via the outbox")
                assert enqueued == []  # not before the row commits
            assert enqueued == [result.id]
    finally:
        task_enqueued.disconnect(on_enqueued)
    [row] = OutboxMessage.objects.all()
    assert (row.job_id, row.job_name) == (result.id, JOB_NAME)
    assert echo.get_result(result.id).status == TaskResultStatus.READY  # committed with it


def test_results_are_stored_with_use_tz_false_deferred_task_included(log: str) -> None:
    with override_settings(USE_TZ=False), capture_jobs():
        due = dt.datetime.now() - dt.timedelta(seconds=1)  # naive local time, as USE_TZ = False has it
        result = echo.using(run_after=due).enqueue(log, "naive")
        perform_enqueued_jobs()
        stored = echo.get_result(result.id)
    assert stored.status == TaskResultStatus.SUCCESSFUL
    assert timezone.is_naive(stored.finished_at)


def test_prune_without_the_results_table_says_to_migrate_instead_of_a_traceback() -> None:
    with connection.schema_editor() as editor:
        editor.delete_model(TaskResultRecord)
    try:
        with pytest.raises(
            CommandError, match=r"does not exist in database 'default': run manage.py migrate kafka_jobs"
        ):
            call_command("prunetaskresults", stdout=StringIO())
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(TaskResultRecord)
