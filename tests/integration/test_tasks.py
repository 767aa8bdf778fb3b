"""django.tasks tasks on real workers (issue 9): enqueued from a view, arguments, retries and dead letters,
results through every status, async tasks, context, deferred tasks, and messages naming anything else."""

from __future__ import annotations

import datetime as dt
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from kafka_jobs.producer import get_producer
from kafka_jobs.tasks.compat import TaskResultStatus
from kafka_jobs.tasks.job import JOB_NAME
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.integration.test_failures import dead_letters, headers_of, produce_raw
from tests.jobs import RecordJob, read_records_so_far
from tests.tasks import PlannedFailure, always_fails, async_echo, echo, wait_for_file, with_context

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER_TIMEOUT = 90.0


def task_runs(log: str, name: str) -> list[dict[str, Any]]:
    return [r for r in read_records_so_far(log) if r.get("task") == name and r.get("event") == "ran"]


def burst(kafka_env: KafkaEnv, *queues: str) -> Any:
    get_producer().flush(10)
    worker = kafka_env.run_worker("--burst", "--queues", *queues, timeout=WORKER_TIMEOUT)
    assert worker.proc.returncode == 0, worker.output()
    return worker


def test_a_task_enqueued_from_a_view_runs_on_the_worker_and_its_result_is_stored(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    response = Client().post("/enqueue-task/", {"log": log, "note": "hello"})
    assert response.status_code == 200
    job = RecordJob.set(partition=0).perform_later(log, "a job beside the task")  # same queue, same topic
    result = echo.get_result(response.json()["result_id"])
    assert (response.json()["status"], result.status) == ("READY", TaskResultStatus.READY)

    worker = burst(kafka_env, "default")

    [run] = task_runs(log, "echo")
    assert (run["args"], run["kwargs"]) == (["hello"], {"via": "view"})
    assert run["thread"].startswith("kafka-jobs-")  # a job thread of the worker
    [job_run] = [r for r in read_records_so_far(log) if r.get("job_id") == job.job_id]
    assert job_run["topic"] == kafka_env.topic("default")  # one worker ran the job and the task
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"args": ["hello"], "kwargs": {"via": "view"}}
    assert [worker_id.rpartition(":")[2] for worker_id in result.worker_ids] == [str(worker.pid)]
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert f"Task id={result.id} path=tests.tasks.echo state=SUCCESSFUL" in worker.output()  # Django's task log


def test_json_arguments_round_trip_through_kafka(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    args = ["é ☃ \u0000", 0, -1.5, None, False, [1, [2, [3]]], {"_kj": "model", "pk": 1}, {"": ""}]
    kwargs = {"nested": {"list": [{"a": None}], "_kj": "tuple"}, "big": 2**53, "tuple": (1, 2)}
    result = echo.using(queue_name="single").enqueue(log, *args, **kwargs)

    burst(kafka_env, "single")

    expected_kwargs = {**kwargs, "tuple": [1, 2]}  # JSON has no tuple: Django normalizes it to a list
    [run] = task_runs(log, "echo")
    assert (run["args"], run["kwargs"]) == (args, expected_kwargs)
    result.refresh()
    assert result.return_value == {"args": args, "kwargs": expected_kwargs}


def test_a_failing_task_is_retried_then_dead_lettered_and_its_result_failed(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    result = always_fails.enqueue(log)  # route dlq: one retry, then the dead letter queue

    burst(kafka_env, "dlq")

    assert len(task_runs(log, "always_fails")) == 2
    [letter] = dead_letters(kafka_env, "dlq")
    headers = headers_of(letter)
    assert (headers["kj-job"], headers["kj-id"], headers["kj-dlq-attempts"]) == (JOB_NAME, result.id, "2")
    assert headers["kj-dlq-exception-class"] == "tests.tasks.PlannedFailure"
    assert json.loads(letter.value())["kwargs"]["task"] == "tests.tasks.always_fails"
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert [error.exception_class for error in result.errors] == [PlannedFailure, PlannedFailure]
    assert result.attempts == 2 and result.finished_at is not None


def test_results_go_ready_running_successful_and_ready_again_between_retries(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    go = Path(kafka_env.tmp_path / "go")
    waiting = wait_for_file.enqueue(log, str(go))
    assert waiting.status == TaskResultStatus.READY
    retried = with_context.enqueue(log, 1)  # route retry3: fails on attempt 1, succeeds on attempt 2
    get_producer().flush(10)
    worker = kafka_env.start_worker("--queues", "default", "retry3")

    def status_of(result: Any) -> Any:
        result.refresh()
        return result.status

    wait_for(lambda: status_of(waiting) == TaskResultStatus.RUNNING, 60, message="the task never showed RUNNING")
    assert waiting.started_at is not None and waiting.finished_at is None
    go.touch()
    wait_for(lambda: status_of(waiting) == TaskResultStatus.SUCCESSFUL, 30, message="the task never succeeded")
    assert waiting.return_value == "done"
    wait_for(lambda: status_of(retried) == TaskResultStatus.SUCCESSFUL, 60, message="the retried task never succeeded")
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()

    first, second = task_runs(log, "with_context")
    # Each run sees the result as stored: RUNNING, and on the retry the error the first run left (READY between).
    assert (first["attempt"], first["status"], first["errors"]) == (1, "RUNNING", [])
    assert (second["attempt"], second["status"], second["errors"]) == (2, "RUNNING", ["tests.tasks.PlannedFailure"])
    assert first["result_id"] == second["result_id"] == retried.id
    assert retried.return_value == 2 and retried.attempts == 2
    assert "state=READY" not in worker.output()  # READY is not a finish: task_finished is sent once
    assert worker.output().count(f"Task id={retried.id} path=tests.tasks.with_context state=SUCCESSFUL") == 1


def test_an_async_task_runs_in_a_worker(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    result = async_echo.enqueue(log, {"nested": [1, "two"]})

    burst(kafka_env, "default")

    [run] = task_runs(log, "async_echo")
    assert run["value"] == {"nested": [1, "two"]}
    assert run["sync_thread"].startswith("kafka-jobs-")  # its sync_to_async code ran on the job thread
    result.refresh()
    assert result.return_value == {"nested": [1, "two"]}


def test_a_deferred_task_waits_in_the_delay_tiers_until_run_after(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    worker = kafka_env.start_worker("--queues", "delayed")
    due = timezone.now() + dt.timedelta(seconds=2)
    result = echo.using(queue_name="delayed", run_after=due).enqueue(log, "later")
    get_producer().flush(10)

    wait_for(lambda: task_runs(log, "echo"), 60, message="the deferred task never ran")
    worker.send(signal.SIGTERM)
    worker.wait(30)

    result.refresh()
    assert result.started_at >= due
    assert result.status == TaskResultStatus.SUCCESSFUL


def _task_message(task: str, args: list[Any], queue: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A hand-made TaskJob message naming ``task`` (as an attacker or a bug could write one)."""
    job_id = str(uuid.uuid4())
    body = {
        "v": 1,
        "job": JOB_NAME,
        "id": job_id,
        "queue": queue,
        "args": [],
        "kwargs": {"task": task, "backend": "default", "args": args, "kwargs": {}},
    }
    return json.dumps(body).encode(), [("kj-job", JOB_NAME.encode()), ("kj-id", job_id.encode())]


def test_messages_naming_anything_but_a_task_are_dead_lettered_at_once_and_never_run(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    pwned = kafka_env.tmp_path / "pwned"
    produce_raw(
        kafka_env,
        "dlq",
        _task_message("os.system", [f"touch {pwned}"], "dlq"),
        _task_message("tests.tasks.plain_function", [log], "dlq"),
        _task_message("subprocess.run", [["touch", str(pwned)]], "dlq"),
    )
    behind = echo.using(queue_name="dlq").enqueue(log, "behind")

    burst(kafka_env, "dlq")

    letters = dead_letters(kafka_env, "dlq")
    assert len(letters) == 3
    assert {headers_of(letter)["kj-dlq-exception-class"] for letter in letters} == {"kafka_jobs.exceptions.UnknownTask"}
    assert {headers_of(letter)["kj-dlq-attempts"] for letter in letters} == {"1"}  # poison: never retried
    assert not pwned.exists()
    assert [r["task"] for r in read_records_so_far(log)] == ["echo"]  # only the real task behind them ran
    behind.refresh()
    assert behind.status == TaskResultStatus.SUCCESSFUL


def test_a_worker_refuses_to_start_without_the_results_table(kafka_env: KafkaEnv, tmp_path: Path) -> None:
    # An empty database: migrate was not run there, so no task result could be recorded.
    worker = kafka_env.start_worker("--queues", "default", KAFKA_JOBS_TEST_DB=str(tmp_path / "unmigrated.sqlite3"))

    code = worker.wait(60)

    assert code != 0
    assert "the results table does not exist in database 'default': run manage.py migrate kafka_jobs" in (
        worker.output()
    )
