"""The worker against a real broker: at-least-once, backoff, shutdown, crashes and refused messages."""

from __future__ import annotations

import json
import logging
import signal
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from django.test import Client, override_settings

from kafka_jobs import BrokerUnavailable, EnqueueError
from kafka_jobs.producer import close_producer, get_producer
from kafka_jobs.worker import ExitCode
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv, WorkerProcess
from tests.jobs import FailingJob, RecordJob, SlowJob, SyncJob, read_records
from tests.models import Widget

pytestmark = pytest.mark.integration


def start_on_slow_job(
    kafka_env: KafkaEnv, log: str, tag: str, seconds: float, *, behind: tuple[str, ...] = ()
) -> tuple[SlowJob, WorkerProcess]:
    """Enqueue a SlowJob (and instant ones ``behind`` it), start a worker, return once the slow job runs."""
    job = SlowJob.perform_later(log, tag, seconds)
    for other in behind:
        SlowJob.perform_later(log, other, 0.0)
    get_producer().flush(10)
    worker = kafka_env.start_worker()
    wait_for(lambda: any(r["tag"] == tag for r in events(log, "started")), timeout=30, message=f"{tag} never started")
    return job, worker


def events(log: str, event: str) -> list[dict]:
    return [r for r in read_records(log) if r["event"] == event]


@pytest.mark.django_db(transaction=True)
def test_job_enqueued_from_a_view_runs_once_with_its_arguments(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    widget = Widget.objects.create(name="blue")
    response = Client().post("/enqueue/", {"widget": widget.pk, "log": log, "note": "hello"})
    assert response.status_code == 200
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst")

    assert worker.proc.returncode == 0, worker.output()
    (run,) = events(log, "ran")
    assert run["job_id"] == response.json()["job_id"]
    assert run["args"] == ["hello"]
    assert run["widget"] == ["Widget", widget.pk, "blue"]  # loaded again from the database by the worker
    assert run["topic"] == kafka_env.topic("default")
    assert kafka_env.committed("default", run["partition"]) == run["offset"] + 1


def test_failing_job_is_retried_after_backoff_while_another_partition_keeps_flowing(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    failing = FailingJob.set(partition=0).perform_later(log, 3, tag="failing")
    behind = RecordJob.set(partition=0).perform_later(log, "behind")
    others = [RecordJob.set(partition=1).perform_later(log, f"other-{i}") for i in range(5)]
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--concurrency", "2")

    assert worker.proc.returncode == 0, worker.output()
    records = read_records(log)
    order = [r.get("tag") or r["args"][0] for r in records]
    failing_runs = [i for i, name in enumerate(order) if name == "failing"]
    assert len(failing_runs) == 4  # three failures, then success
    # The other partition did not wait for the failing job's backoffs...
    assert all(order.index(f"other-{i}") < failing_runs[-1] for i in range(5))
    # ...but the job behind it in its own partition did (ordering is kept).
    assert order.index("behind") > failing_runs[-1]
    assert [r["executions"] for r in records if r["job_id"] == failing.job_id] == [1, 2, 3, 4]
    assert {r["job_id"] for r in events(log, "ran")} >= {behind.job_id, *(o.job_id for o in others)}
    assert "retrying in" in worker.output()


def test_sigterm_lets_the_running_job_finish_commits_it_and_starts_no_other(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    _, worker = start_on_slow_job(kafka_env, log, "slow", 2.0, behind=("next",))

    worker.send(signal.SIGTERM)

    assert worker.wait(30) == ExitCode.OK, worker.output()
    assert [r["tag"] for r in events(log, "finished")] == ["slow"]
    assert [r["tag"] for r in events(log, "started")] == ["slow"]
    assert kafka_env.committed("single") == 1
    # After a restart only the job that was not started runs.
    restarted = kafka_env.run_worker("--burst")
    assert restarted.proc.returncode == 0, restarted.output()
    assert [r["tag"] for r in events(log, "started")] == ["slow", "next"]


def test_job_killed_mid_run_runs_again_after_restart(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job, worker = start_on_slow_job(kafka_env, log, "victim", 1.5)

    worker.kill()  # SIGKILL: no chance to finish or commit

    assert not events(log, "finished")
    restarted = kafka_env.run_worker("--burst")
    assert restarted.proc.returncode == 0, restarted.output()
    assert [r["job_id"] for r in events(log, "started")] == [job.job_id, job.job_id]
    assert [r["job_id"] for r in events(log, "finished")] == [job.job_id]
    assert kafka_env.committed("single") == 1


def test_second_signal_exits_at_once_without_marking_the_job(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    _, worker = start_on_slow_job(kafka_env, log, "long", 30.0)

    worker.send(signal.SIGTERM)
    wait_for(lambda: "Stopping: received SIGTERM" in worker.output(), timeout=10, message="no graceful stop")
    worker.send(signal.SIGTERM)

    assert worker.wait(10) == ExitCode.FORCED
    assert not events(log, "finished")
    assert kafka_env.committed("single") < 0


@pytest.mark.kafka_jobs_overrides({"SHUTDOWN_TIMEOUT": 1.0})
def test_shutdown_timeout_exits_without_marking_the_running_job(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    _, worker = start_on_slow_job(kafka_env, log, "long", 30.0)

    worker.send(signal.SIGTERM)

    assert worker.wait(15) == ExitCode.SHUTDOWN_TIMEOUT, worker.output()
    assert not events(log, "finished")
    assert kafka_env.committed("single") < 0


def test_message_naming_unregistered_code_is_refused_and_never_run(kafka_env: KafkaEnv, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    envelope = {
        "v": 1,
        "job": "os.system",
        "id": str(uuid.uuid4()),
        "queue": "default",
        "args": [f"touch {marker}"],
        "kwargs": {},
    }
    producer = Producer({"bootstrap.servers": kafka_env.bootstrap})
    producer.produce(kafka_env.topic("default"), json.dumps(envelope).encode(), partition=0)
    producer.flush(10)
    log = kafka_env.log_file()
    after = RecordJob.set(partition=0).perform_later(log, "after")
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst")

    assert worker.proc.returncode == 0, worker.output()
    assert not marker.exists()
    assert "No job is registered under the name 'os.system'" in worker.output()
    assert [r["job_id"] for r in events(log, "ran")] == [after.job_id]  # the worker went on
    assert kafka_env.committed("default", 0) == 2


def test_produce_sync_to_a_dead_broker_raises_broker_unavailable_in_bounded_time(kafka_env: KafkaEnv) -> None:
    dead = {**kafka_env.kafka_jobs_settings(), "BOOTSTRAP_SERVERS": "127.0.0.1:9", "DELIVERY_TIMEOUT": 2.0}
    with override_settings(KAFKA_JOBS=dead):
        close_producer()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="did not acknowledge"):
            SyncJob.perform_later()
        elapsed = time.monotonic() - started
        close_producer()
    assert elapsed < 10


def test_worker_refuses_missing_topics_unless_told_to_create_them(kafka_env: KafkaEnv) -> None:
    prefix = kafka_env.prefix + "other-"
    missing = kafka_env.start_worker("--burst", KAFKA_JOBS_QUEUE_PREFIX=prefix)
    assert missing.wait(60) == 1
    assert f"{prefix}default" in missing.output() and "--create-topics" in missing.output()

    created = kafka_env.start_worker("--burst", "--create-topics", KAFKA_JOBS_QUEUE_PREFIX=prefix)
    assert created.wait(60) == 0, created.output()


def test_worker_reports_an_unreachable_broker_clearly(kafka_env: KafkaEnv) -> None:
    worker = kafka_env.start_worker("--burst", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")
    assert worker.wait(60) == 1
    assert "Could not reach Kafka at '127.0.0.1:9'" in worker.output()


def test_worker_stops_with_an_error_instead_of_hanging_when_a_job_thread_crashes(kafka_env: KafkaEnv) -> None:
    from kafka_jobs.conf import get_settings
    from kafka_jobs.routing import get_routes
    from kafka_jobs.worker import Worker

    log = kafka_env.log_file()
    RecordJob.perform_later(log, "never")
    get_producer().flush(10)
    worker = Worker(get_settings(), get_routes().select(["default"]), burst=True)

    def crash(lane: object) -> None:
        raise RuntimeError("a bug in the worker")

    worker.threads._run_lane = crash  # type: ignore[method-assign]

    assert worker.run() == ExitCode.ERROR
    assert not read_records(log)
    assert kafka_env.committed("default", 0) < 0 and kafka_env.committed("default", 1) < 0


@pytest.mark.parametrize("dispatch_method", ["produce_sync", "produce_async"])
def test_a_message_too_large_for_the_broker_is_a_typed_error_at_enqueue(
    kafka_env: KafkaEnv, dispatch_method: str
) -> None:
    job_class = SyncJob if dispatch_method == "produce_sync" else RecordJob
    assert job_class.options.dispatch_method == dispatch_method
    started = time.monotonic()
    with pytest.raises(EnqueueError, match="too large") as raised:
        job_class.perform_later("x" * 2_000_000)
    assert time.monotonic() - started < 5
    assert job_class.job_name in str(raised.value)  # says which job


def test_an_explicit_partition_that_does_not_exist_is_a_typed_error(kafka_env: KafkaEnv) -> None:
    started = time.monotonic()
    with pytest.raises(EnqueueError, match="Unknown partition"):
        SyncJob.set(partition=99).perform_later()
    assert time.monotonic() - started < 10


def test_produce_async_failure_is_logged_at_error_with_the_job_name_and_id(kafka_env: KafkaEnv) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("kafka_jobs.producer")
    logger.addHandler(handler)
    dead = {**kafka_env.kafka_jobs_settings(), "BOOTSTRAP_SERVERS": "127.0.0.1:9", "DELIVERY_TIMEOUT": 1.0}
    try:
        with override_settings(KAFKA_JOBS=dead):
            close_producer()
            started = time.monotonic()
            job = RecordJob.perform_later(kafka_env.log_file(), "lost?")
            assert time.monotonic() - started < 1  # async: the caller does not wait
            wait_for(lambda: records, timeout=15, message="no ERROR log for the failed delivery")
            close_producer()
    finally:
        logger.removeHandler(handler)
    text = records[0].getMessage()
    assert job.job_name in text and job.job_id in text and "NOT enqueued" in text
