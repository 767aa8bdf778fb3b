"""Failure handling in real worker processes: retries, backoff per route, retry_on / discard_on, the dead
letter queue, poison messages and critical errors."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from kafka_jobs.producer import get_producer
from kafka_jobs.worker import ExitCode
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.jobs import DiscardOnJob, ExitJob, FailingJob, FlakyJob, RecordJob, RetryOnJob, read_records
from tests.models import Widget

pytestmark = pytest.mark.integration

WORKER_TIMEOUT = 90.0
READ_TIMEOUT = 20.0


def read_topic(bootstrap: str, topic: str, timeout: float = READ_TIMEOUT) -> list[Message]:
    """Return every message of ``topic`` (read to the end of each partition) with a plain consumer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        assert metadata.error is None, f"{topic}: {metadata.error}"
        partitions = set(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while partitions:
            assert time.monotonic() < deadline, f"did not reach the end of {topic} within {timeout}s"
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                partitions.discard(message.partition())
                continue
            messages.append(message)
        return sorted(messages, key=lambda m: (m.partition(), m.offset()))
    finally:
        consumer.close()


def dead_letters(env: KafkaEnv, queue: str) -> list[Message]:
    """Return the messages in the dead letter topic of ``queue`` (named ``<queue>.dead`` in the test routes)."""
    return read_topic(env.bootstrap, env.topic(f"{queue}.dead"))


def headers_of(message: Message) -> dict[str, str]:
    return {key: (value or b"").decode() for key, value in message.headers() or []}


def runs_of(log: str, job_id: str) -> list[dict[str, Any]]:
    return [r for r in read_records(log) if r.get("job_id") == job_id and r.get("event") == "ran"]


def produce_raw(env: KafkaEnv, queue: str, *messages: tuple[bytes, list[tuple[str, bytes]]]) -> None:
    """Produce raw values (with headers) to ``queue``'s topic, bypassing kafka_jobs."""
    producer = Producer({"bootstrap.servers": env.bootstrap})
    for value, headers in messages:
        producer.produce(env.topic(queue), value, headers=headers)
    assert producer.flush(10) == 0


def run_burst(env: KafkaEnv, queue: str) -> Any:
    get_producer().flush(10)
    worker = env.run_worker("--queues", queue, "--burst", timeout=WORKER_TIMEOUT)
    return worker


def test_job_failing_twice_then_succeeding_runs_three_times_and_is_not_dead_lettered(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = FlakyJob.perform_later(log, 2, tag="flaky")  # route retry3: DLQ after 3 retries
    after = RecordJob.set(queue="retry3").perform_later(log, "after")

    worker = run_burst(kafka_env, "retry3")

    assert worker.proc.returncode == 0, worker.output()
    runs = runs_of(log, job.job_id)
    assert [r["executions"] for r in runs] == [1, 2, 3]  # the job sees its attempt...
    assert {tuple(r["message"]) for r in runs} == {(kafka_env.topic("retry3"), 0, 0)}  # ...and its coordinates
    assert len(runs_of(log, after.job_id)) == 1
    assert dead_letters(kafka_env, "retry3") == []
    assert kafka_env.committed("retry3") == 2


def test_job_out_of_retries_goes_to_the_dead_letter_queue_with_its_key_payload_and_headers(
    kafka_env: KafkaEnv,
) -> None:
    log = kafka_env.log_file()
    doomed = FailingJob.set(queue="dlq", partition_key="order-7").perform_later(log, 99, tag="doomed")
    behind = [RecordJob.set(queue="dlq").perform_later(log, f"behind-{i}") for i in range(2)]

    worker = run_burst(kafka_env, "dlq")  # max_retries=1

    assert worker.proc.returncode == 0, worker.output()
    records = read_records(log)
    doomed_runs = [i for i, r in enumerate(records) if r.get("job_id") == doomed.job_id]
    assert [records[i]["executions"] for i in doomed_runs] == [1, 2]  # the first run and one retry
    behind_runs = [i for i, r in enumerate(records) if r.get("job_id") in {b.job_id for b in behind}]
    assert len(behind_runs) == 2
    assert min(behind_runs) > max(doomed_runs)  # in order: the partition went on after the dead letter

    (original, *_) = read_topic(kafka_env.bootstrap, kafka_env.topic("dlq"))
    (dead,) = dead_letters(kafka_env, "dlq")
    assert dead.key() == original.key() == b"order-7"
    assert dead.value() == original.value()
    headers = headers_of(dead)
    assert headers["kj-job"] == "tests.jobs.FailingJob"
    assert headers["kj-id"] == doomed.job_id
    assert headers["kj-dlq-source-topic"] == kafka_env.topic("dlq")
    assert headers["kj-dlq-source-partition"] == "0"
    assert headers["kj-dlq-source-offset"] == "0"
    assert headers["kj-dlq-consumer-group"] == kafka_env.group_id
    assert headers["kj-dlq-attempts"] == "2"
    assert headers["kj-dlq-exception-class"] == "builtins.RuntimeError"
    assert headers["kj-dlq-exception-message"] == "planned failure 2 of 99"
    assert headers["kj-dlq-traceback"].startswith("Traceback")
    assert "in perform" in headers["kj-dlq-traceback"]
    failed_at = dt.datetime.fromisoformat(headers["kj-dlq-failed-at"])
    assert abs((dt.datetime.now(dt.UTC) - failed_at).total_seconds()) < 120
    assert kafka_env.committed("dlq") == 3
    assert f"id={doomed.job_id} {kafka_env.topic('dlq')}/0@0 attempt=2 moved to the dead letter queue" in (
        worker.output()
    )


def test_max_retries_zero_dead_letters_on_the_first_failure(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = FailingJob.set(queue="dlq0").perform_later(log, 99)

    worker = run_burst(kafka_env, "dlq0")

    assert worker.proc.returncode == 0, worker.output()
    assert len(runs_of(log, job.job_id)) == 1
    (dead,) = dead_letters(kafka_env, "dlq0")
    assert headers_of(dead)["kj-dlq-attempts"] == "1"
    assert headers_of(dead)["kj-id"] == job.job_id
    assert kafka_env.committed("dlq0") == 1


@pytest.mark.django_db(transaction=True)
def test_poison_messages_are_dead_lettered_without_retries_and_the_worker_keeps_running(
    kafka_env: KafkaEnv,
) -> None:
    log = kafka_env.log_file()
    garbage = b"\x00\xffnot a job at all"
    unregistered = {"v": 1, "job": "tests.jobs.NoSuchJob", "id": "unregistered-1", "queue": "dlq", "args": []}
    future = {**unregistered, "v": 99, "job": "tests.jobs.RecordJob", "id": "future-version-1"}
    produce_raw(
        kafka_env,
        "dlq",
        (garbage, []),
        (json.dumps({**unregistered, "kwargs": {}}).encode(), [("kj-job", b"tests.jobs.NoSuchJob")]),
        (json.dumps({**future, "kwargs": {}}).encode(), []),
    )
    widget = Widget.objects.create(name="soon deleted")
    deleted_row = RecordJob.set(queue="dlq").perform_later(log, "widget", widget=widget)
    get_producer().flush(10)
    widget.delete()
    survivor = RecordJob.set(queue="dlq").perform_later(log, "survivor")
    get_producer().flush(10)

    worker = kafka_env.start_worker("--queues", "dlq")
    wait_for(lambda: runs_of(log, survivor.job_id), timeout=60, message=worker.output)
    letters = wait_for(lambda: (found := dead_letters(kafka_env, "dlq")) and len(found) == 4 and found, 30)

    assert worker.proc.poll() is None, worker.output()  # still running
    by_offset = {int(headers_of(m)["kj-dlq-source-offset"]): headers_of(m) for m in letters}
    assert {o: h["kj-dlq-exception-class"] for o, h in by_offset.items()} == {
        0: "kafka_jobs.exceptions.DecodeError",
        1: "kafka_jobs.exceptions.JobNotRegistered",
        2: "kafka_jobs.exceptions.UnsupportedEnvelopeVersion",
        3: "kafka_jobs.exceptions.ArgumentLoadError",
    }
    assert all(h["kj-dlq-attempts"] == "1" for h in by_offset.values())  # never retried
    assert letters[0].value() == garbage  # byte for byte
    assert "no longer exists" in by_offset[3]["kj-dlq-exception-message"]
    assert runs_of(log, deleted_row.job_id) == []
    assert "retrying in" not in worker.output()
    worker.send(15)
    assert worker.wait(30) == 0, worker.output()
    assert kafka_env.committed("dlq") == 5


def test_poison_message_without_a_dead_letter_queue_is_logged_with_its_coordinates_and_skipped(
    kafka_env: KafkaEnv,
) -> None:
    log = kafka_env.log_file()
    produce_raw(kafka_env, "single", (b"{not json", [("kj-job", b"tests.jobs.Whatever"), ("kj-id", b"abc-123")]))
    after = RecordJob.set(queue="single").perform_later(log, "after")

    worker = run_burst(kafka_env, "single")

    assert worker.proc.returncode == 0, worker.output()
    output = worker.output()
    line = next(line for line in output.splitlines() if "SKIPPED" in line)
    assert f"tests.jobs.Whatever id=abc-123 {kafka_env.topic('single')}/0@0 attempt=1" in line
    assert "DecodeError" in line
    assert "b'{not json'" in line  # the payload, for the operator
    assert len(runs_of(log, after.job_id)) == 1
    assert kafka_env.committed("single") == 2


def test_system_exit_in_a_job_stops_the_worker_with_status_3_and_the_job_runs_again_after_restart(
    kafka_env: KafkaEnv,
) -> None:
    log = kafka_env.log_file()
    job = ExitJob.set(queue="dlq0").perform_later(log)  # dlq0 would dead-letter any ordinary first failure
    behind = RecordJob.set(queue="dlq0").perform_later(log, "behind")

    first = run_burst(kafka_env, "dlq0")

    assert first.proc.returncode == ExitCode.CRITICAL_JOB_ERROR == 3, first.output()
    assert len(runs_of(log, job.job_id)) == 1
    assert runs_of(log, behind.job_id) == []  # the partition stopped at the job
    assert kafka_env.committed("dlq0") < 1  # not marked
    assert "retrying in" not in first.output()

    second = run_burst(kafka_env, "dlq0")

    assert second.proc.returncode == 0, second.output()
    assert len(runs_of(log, job.job_id)) == 2  # ran again, and succeeded this time
    assert len(runs_of(log, behind.job_id)) == 1
    assert dead_letters(kafka_env, "dlq0") == []
    assert kafka_env.committed("dlq0") == 2


def test_retry_on_runs_the_job_exactly_its_attempts_then_the_route_dead_letters_it(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = RetryOnJob.perform_later(log)  # route dlq has max_retries=1; retry_on allows 3 attempts

    worker = run_burst(kafka_env, "dlq")

    assert worker.proc.returncode == 0, worker.output()
    assert [r["executions"] for r in runs_of(log, job.job_id)] == [1, 2, 3]
    (dead,) = dead_letters(kafka_env, "dlq")
    headers = headers_of(dead)
    assert headers["kj-dlq-exception-class"] == "tests.jobs.FlakyError"
    assert headers["kj-dlq-attempts"] == "3"
    assert worker.output().count("(retry_on)") == 2


def test_discard_on_runs_the_job_once_and_marks_it_without_dead_lettering(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = DiscardOnJob.perform_later(log)  # route dlq0 would dead-letter any other failure at once
    after = RecordJob.set(queue="dlq0").perform_later(log, "after")

    worker = run_burst(kafka_env, "dlq0")

    assert worker.proc.returncode == 0, worker.output()
    assert len(runs_of(log, job.job_id)) == 1
    assert len(runs_of(log, after.job_id)) == 1
    assert dead_letters(kafka_env, "dlq0") == []
    assert kafka_env.committed("dlq0") == 2
    assert f"id={job.job_id} {kafka_env.topic('dlq0')}/0@0 attempt=1 failed with" in worker.output()
    assert "discarded (discard_on)" in worker.output()


def test_route_backoff_applies_and_the_attempt_counter_resets_after_a_success(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    # Route "backoff": initial 0.5 s, doubling, max 4 s (the global setting in tests is 0.2 s).
    first = FlakyJob.set(queue="backoff").perform_later(log, 2, tag="first")
    second = FlakyJob.set(queue="backoff").perform_later(log, 1, tag="second")

    worker = run_burst(kafka_env, "backoff")

    assert worker.proc.returncode == 0, worker.output()
    delays: dict[str, list[float]] = {first.job_id: [], second.job_id: []}
    for job_id, delay in re.findall(
        r" id=(\S+) \S+ attempt=\d+ failed with .*; retrying in ([\d.]+)s \(backoff\)", worker.output()
    ):
        delays[job_id].append(float(delay))
    assert delays[first.job_id] == [0.5, 1.0]
    assert delays[second.job_id] == [0.5]  # not 2.0: the counter started again after the first job succeeded
    first_runs = [r["at"] for r in runs_of(log, first.job_id)]
    second_runs = [r["at"] for r in runs_of(log, second.job_id)]
    assert len(first_runs) == 3 and len(second_runs) == 2
    assert first_runs[1] - first_runs[0] >= 0.5 and first_runs[2] - first_runs[1] >= 1.0
    assert second_runs[1] - second_runs[0] >= 0.5
    assert second_runs[0] > first_runs[2]  # the partition stayed paused at the failing job
