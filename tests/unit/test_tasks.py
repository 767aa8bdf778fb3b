"""The django.tasks backend in-process (issue 9): contract, flags, results, signals, context, the resolver."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from kafka_jobs.exceptions import ConfigurationError, UnknownTask
from kafka_jobs.serializer import JsonSerializer
from kafka_jobs.tasks.compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from kafka_jobs.tasks.job import JOB_NAME, TaskJob
from kafka_jobs.tasks.resolver import resolve_task
from kafka_jobs.tasks.runner import attempt_worker_ids
from kafka_jobs.testing import capture_jobs, enqueued_jobs, perform_enqueued_jobs
from tests.tasks import PlannedFailure, always_fails, async_echo, echo, echo_plain, runs, with_context

# transaction=True: inside a test transaction the messages would wait for its commit (ENQUEUE_AFTER_COMMIT).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def log(tmp_path: Any) -> str:
    return str(tmp_path / "tasks.log")


@pytest.fixture
def sent() -> Iterator[list[tuple[str, Any, str]]]:
    """Collect Django's task signals as (signal, sender, status)."""
    events: list[tuple[str, Any, str]] = []
    receivers = {}
    for name, signal in (("enqueued", task_enqueued), ("started", task_started), ("finished", task_finished)):

        def receiver(sender: Any, task_result: Any, _name: str = name, **_: Any) -> None:
            events.append((_name, sender, str(task_result.status)))

        receivers[name] = receiver
        signal.connect(receiver)
    yield events
    task_enqueued.disconnect(receivers["enqueued"])
    task_started.disconnect(receivers["started"])
    task_finished.disconnect(receivers["finished"])


# --- The contract and its flags -------------------------------------------------------------------------


def test_flags_say_defer_and_async_yes_priority_no_results_only_when_kept() -> None:
    kept, plain = task_backends["default"], task_backends["plain"]
    assert (kept.supports_defer, kept.supports_async_task, kept.supports_priority) == (True, True, False)
    assert kept.supports_get_result is True
    assert plain.supports_get_result is False


def test_enqueue_sends_a_task_job_in_the_normal_envelope_and_returns_a_ready_result(log: str) -> None:
    with capture_jobs() as backend:
        result = echo.enqueue(log, 1, flag=True)

        [job] = enqueued_jobs()
        _, payload = backend.enqueued[0]
    envelope = JsonSerializer().loads(payload)
    assert isinstance(job, TaskJob)
    assert (envelope.job, envelope.job_id, envelope.queue) == (JOB_NAME, result.id, "default")
    assert envelope.kwargs == {
        "task": "tests.tasks.echo",
        "backend": "default",
        "args": [log, 1],
        "kwargs": {"flag": True},
    }
    assert result.status == TaskResultStatus.READY
    assert result.enqueued_at is not None
    assert echo.get_result(result.id).status == TaskResultStatus.READY  # the row is there before any worker


def test_a_task_runs_from_its_message_and_its_result_goes_through_running_to_successful(
    log: str, sent: list[tuple[str, Any, str]]
) -> None:
    with capture_jobs():
        result = echo.enqueue(log, "a", n=2)
        assert perform_enqueued_jobs() == 1

    [run] = runs(log, "echo")
    assert (run["args"], run["kwargs"]) == (["a"], {"n": 2})
    backend_class = type(task_backends["default"])
    assert sent == [
        ("enqueued", backend_class, "READY"),
        ("started", backend_class, "RUNNING"),
        ("finished", backend_class, "SUCCESSFUL"),
    ]
    assert result.status == TaskResultStatus.READY  # the caller's copy, until refreshed
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"args": ["a"], "kwargs": {"n": 2}}
    assert result.is_finished and result.started_at and result.finished_at and result.last_attempted_at
    assert result.attempts == 1 and result.errors == []


def test_json_arguments_round_trip_as_django_normalizes_them(log: str) -> None:
    args = ("text é ☃", 3, 2.5, None, True, (1, [2, {"x": None}]), {"_kj": "not a tag", "nested": {"a": [1]}})
    kwargs = {"empty": [], "obj": {}, "big": 2**62}
    with capture_jobs():
        result = echo.enqueue(log, *args, **kwargs)
        perform_enqueued_jobs()

    expected_args = [
        log,
        "text é ☃",
        3,
        2.5,
        None,
        True,
        [1, [2, {"x": None}]],
        {"_kj": "not a tag", "nested": {"a": [1]}},
    ]
    [run] = runs(log, "echo")
    assert run["args"] == expected_args[1:]
    assert run["kwargs"] == kwargs
    assert result.args == expected_args
    result.refresh()
    assert result.return_value == {"args": expected_args[1:], "kwargs": kwargs}


def test_arguments_json_cannot_hold_are_refused_at_enqueue(log: str) -> None:
    with capture_jobs(), pytest.raises(TypeError):
        echo.enqueue(log, dt.datetime.now(tz=dt.UTC))
    with capture_jobs():
        assert enqueued_jobs() == []


def test_a_failing_task_is_failed_with_its_error_and_task_finished(log: str, sent: list[tuple[str, Any, str]]) -> None:
    with capture_jobs():
        result = always_fails.enqueue(log)
        with pytest.raises(PlannedFailure):
            perform_enqueued_jobs()

    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    [error] = result.errors
    assert error.exception_class is PlannedFailure
    assert "this task always fails" in error.traceback
    assert [name for name, _, _ in sent] == ["enqueued", "started", "finished"]
    assert sent[-1][2] == "FAILED"


def test_context_has_the_attempt_and_the_running_result(log: str) -> None:
    with capture_jobs():
        result = with_context.enqueue(log, 0)
        perform_enqueued_jobs()

    [run] = runs(log, "with_context")
    assert (run["attempt"], run["result_id"], run["status"]) == (1, result.id, "RUNNING")
    assert echo.get_backend().get_result(result.id).return_value == 1


def test_an_async_task_runs_to_completion(log: str) -> None:
    with capture_jobs():
        result = async_echo.enqueue(log, {"k": [1, 2]})
        perform_enqueued_jobs()

    [run] = runs(log, "async_echo")
    assert run["value"] == {"k": [1, 2]}
    result.refresh()
    assert result.return_value == {"k": [1, 2]}


def test_aenqueue_and_aget_result(log: str) -> None:
    from asgiref.sync import async_to_sync

    with capture_jobs():
        result = async_to_sync(echo.aenqueue)(log, "async-enqueued")
        perform_enqueued_jobs()
        fetched = async_to_sync(echo.aget_result)(result.id)

    assert fetched.return_value == {"args": ["async-enqueued"], "kwargs": {}}


def test_without_results_get_result_raises_not_implemented(log: str) -> None:
    with capture_jobs():
        result = echo_plain.enqueue(log, "x")
        perform_enqueued_jobs()
    assert runs(log, "echo_plain")[0]["note"] == "x"
    with pytest.raises(NotImplementedError, match="RESULTS"):
        echo_plain.get_result(result.id)
    with pytest.raises(NotImplementedError):
        result.refresh()


def test_get_result_of_an_unknown_id_raises_task_result_does_not_exist() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        echo.get_result("no-such-id")


def test_run_after_goes_into_the_job_due_time(log: str) -> None:
    due = timezone.now() + dt.timedelta(hours=1)
    with capture_jobs():
        result = echo.using(run_after=due).enqueue(log)
        [job] = enqueued_jobs()
    assert job.scheduled_at == due
    assert result.task.run_after == due


# --- Refused tasks ----------------------------------------------------------------------------------------


def test_priority_is_refused_kafka_has_none() -> None:
    with pytest.raises(InvalidTask, match="priority"):
        echo.using(priority=10)


def test_a_queue_not_in_queues_is_refused() -> None:
    tasks = {"default": {"BACKEND": "kafka_jobs.tasks.KafkaTaskBackend", "QUEUES": ["a"]}}
    with override_settings(TASKS=tasks), pytest.raises(InvalidTask, match="Queue 'b'"):
        echo.using(queue_name="b")


def test_a_task_defined_in_a_class_is_refused() -> None:
    from kafka_jobs.tasks.compat import Task

    class Holder:
        @staticmethod
        def method() -> None:
            pass

    Holder.method.__qualname__ = "Holder.method"  # as at module level: only the class makes it unreachable
    with pytest.raises(InvalidTask, match="class"):
        Task(func=Holder.method)


def test_unroutable_queue_fails_at_enqueue_and_leaves_no_result(log: str) -> None:
    from kafka_jobs.exceptions import UnroutedQueue
    from kafka_jobs.models import TaskResultRecord

    with override_settings(JOB_BACKEND="kafka"), pytest.raises(UnroutedQueue):
        echo.using(queue_name="not-routed").enqueue(log)
    assert not TaskResultRecord.objects.exists()


# --- The resolver: what a message may name --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "os.system",
        "tests.tasks.plain_function",
        "tests.tasks.missing",
        "tests.no_such_module.echo",
        "kafka_jobs.tasks.compat.Task",
        "json.loads",
        "tests.tasks",
        "",
        "tests..echo",
        "tests.tasks.echo ",
    ],
)
def test_a_path_that_is_not_a_task_of_an_installed_app_is_refused(path: str) -> None:
    with pytest.raises(UnknownTask):
        resolve_task(path)


def test_an_alias_of_a_task_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.tasks

    monkeypatch.setattr(tests.tasks, "alias", tests.tasks.echo, raising=False)
    with pytest.raises(UnknownTask, match="alias"):
        resolve_task("tests.tasks.alias")


def test_a_task_path_resolves_to_its_task() -> None:
    assert resolve_task("tests.tasks.echo") is echo


def _task_envelope(**payload: Any) -> bytes:
    body = {
        "v": 1,
        "job": JOB_NAME,
        "id": "x",
        "queue": "default",
        "args": [],
        "kwargs": {"task": "tests.tasks.echo", "backend": "default", "args": [], "kwargs": {}, **payload},
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "payload",
    [
        {"task": "os.system", "args": ["touch /tmp/kafka-jobs-pwned"]},
        {"task": "tests.tasks.plain_function"},
        {"backend": "missing"},
        {"backend": 3},
        {"args": {"not": "a list"}},
        {"extra": 1},
    ],
)
def test_a_task_message_naming_anything_else_is_poison(payload: dict[str, Any]) -> None:
    envelope = JsonSerializer().loads(_task_envelope(**payload))
    with pytest.raises(UnknownTask):
        envelope.to_job()


def test_a_message_for_a_backend_that_is_not_kafka_is_poison() -> None:
    tasks = {
        "default": {"BACKEND": "kafka_jobs.tasks.KafkaTaskBackend", "QUEUES": []},
        "other": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"},
    }
    from kafka_jobs.tasks import compat

    if compat.FRAMEWORK == "django_tasks":
        tasks["other"]["BACKEND"] = "django_tasks.backends.dummy.DummyBackend"
    with override_settings(TASKS=tasks):
        envelope = JsonSerializer().loads(_task_envelope(backend="other"))
        with pytest.raises(UnknownTask, match="not a KafkaTaskBackend"):
            envelope.to_job()


# --- Options and checks ----------------------------------------------------------------------------------


def _backend_checks(params: dict[str, Any]) -> list[Any]:
    with override_settings(TASKS={"default": {"BACKEND": "kafka_jobs.tasks.KafkaTaskBackend", **params}}):
        return list(task_backends["default"].check())


def test_bad_options_are_reported_e030_and_raised_at_enqueue(log: str) -> None:
    [error] = _backend_checks({"OPTIONS": {"RESULTS": "redis"}})
    assert error.id == "kafka_jobs.E040"
    assert "TASKS['default']['OPTIONS']['RESULTS']" in error.msg
    [error] = _backend_checks({"OPTIONS": {"RESULT": "database"}})
    assert "unknown keys ['RESULT']" in error.msg
    tasks = {"default": {"BACKEND": "kafka_jobs.tasks.KafkaTaskBackend", "OPTIONS": {"RESULTS": 1}}}
    with override_settings(TASKS=tasks), pytest.raises(ConfigurationError, match="RESULTS"):
        echo.enqueue(log)


def test_unrouted_queues_are_reported_w030_and_bad_names_e030() -> None:
    messages = _backend_checks({"QUEUES": ["default", "nowhere", "bad name"]})
    assert [(m.id, m.msg.split(",")[0]) for m in messages] == [
        (
            "kafka_jobs.E040",
            "TASKS['default']['QUEUES'] has invalid queue names ['bad name']: use 1-200 characters from "
            "[A-Za-z0-9._-].",
        ),
        ("kafka_jobs.W040", "TASKS['default']['QUEUES'] lists 'nowhere'"),
    ]


def test_routed_queues_pass_the_checks() -> None:
    assert _backend_checks({"QUEUES": ["default", "dlq"], "OPTIONS": {"RESULTS": "database"}}) == []


def test_task_job_is_not_reported_as_an_unrouted_job() -> None:
    from kafka_jobs.checks import check_backend

    with override_settings(JOB_BACKEND="kafka"):
        assert [m for m in check_backend() if "TaskJob" in m.msg] == []


def test_e031_without_the_backport_app_on_django_5(monkeypatch: pytest.MonkeyPatch) -> None:
    import django
    from django.apps import apps

    from kafka_jobs.tasks.checks import check_task_framework

    monkeypatch.setattr(django, "VERSION", (5, 2, 0, "final", 0))
    monkeypatch.setattr(apps, "is_installed", lambda name: False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())  # the backport is installed
    [error] = check_task_framework()
    assert error.id == "kafka_jobs.E041"
    assert "'django_tasks' is not in INSTALLED_APPS" in error.msg

    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    [error] = check_task_framework()
    assert "kafka-jobs[tasks]" in error.hint


def test_e031_is_quiet_when_the_framework_is_there() -> None:
    from kafka_jobs.tasks.checks import check_task_framework

    assert check_task_framework() == []


# --- Attempts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "executions", "expected"),
    [
        ([], 1, ["me"]),
        (["a"], 2, ["a", "me"]),
        ([], 3, ["me", "me", "me"]),
        (["a", "b", "c"], 2, ["c", "me"]),
        (["a"], 3, ["me", "a", "me"]),
    ],
)
def test_worker_ids_have_one_id_per_execution(earlier: list[str], executions: int, expected: list[str]) -> None:
    assert attempt_worker_ids(earlier, "me", executions) == expected


def test_manage_py_check_runs_the_backend_checks_in_a_fresh_process() -> None:
    """On Django 6 nothing imports django.tasks at start-up, so its backend checks would never run."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from django.conf import settings\n"
        "settings.TASKS = {'default': {'BACKEND': 'kafka_jobs.tasks.KafkaTaskBackend', 'QUEUES': [],"
        " 'OPTIONS': {'RESULTS': 'nowhere'}},\n"
        " 'plain': {'BACKEND': 'kafka_jobs.tasks.KafkaTaskBackend', 'QUEUES': []}}\n"
        "import django\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('check')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "kafka_jobs.E040" in done.stderr, done.stderr
