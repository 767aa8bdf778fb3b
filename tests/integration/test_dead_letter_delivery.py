"""Writing dead letters in real worker processes: a failure that cannot be formatted, a message too large
for the copy to fit, and header text that must stay valid UTF-8. None of them may re-run the job."""

from __future__ import annotations

import signal

import pytest
from django.core.management import CommandError

from kafka_jobs.producer import get_producer
from kafka_jobs.serializer import JsonSerializer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.integration.test_deadletter import kafkadlq
from tests.integration.test_failures import dead_letters, headers_of, produce_raw, read_topic, runs_of
from tests.jobs import RaisingJob, RecordJob, UnprintableJob

pytestmark = pytest.mark.integration

WAIT = 60.0


def start_and_wait_for(kafka_env: KafkaEnv, log: str, job_id: str, queue: str = "dlq0") -> str:
    """Start a worker on ``queue``, wait until job ``job_id`` ran, stop the worker; return its output."""
    get_producer().flush(10)
    worker = kafka_env.start_worker("--queues", queue)
    wait_for(lambda: runs_of(log, job_id), timeout=WAIT, message=worker.output)
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    return worker.output()


def test_a_failure_whose_str_and_repr_raise_is_dead_lettered_once_and_never_runs_again(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = UnprintableJob.perform_later(log)  # route dlq0: dead-lettered on the first failure
    behind = RecordJob.set(queue="dlq0").perform_later(log, "behind")

    output = start_and_wait_for(kafka_env, log, behind.job_id)

    assert len(runs_of(log, job.job_id)) == 1, output  # never re-run to retry the dead letter write
    (dead,) = dead_letters(kafka_env, "dlq0")
    headers = headers_of(dead)
    assert headers["kj-id"] == job.job_id
    assert headers["kj-dlq-exception-class"] == "tests.jobs.UnprintableError"
    assert headers["kj-dlq-exception-message"] == "<tests.jobs.UnprintableError: str() and repr() failed>"
    assert "in perform" in headers["kj-dlq-traceback"]
    assert f"id={job.job_id} {kafka_env.topic('dlq0')}/0@0 attempt=1 moved to the dead letter queue" in output
    assert "Logging error" not in output
    assert output.count("retries spent") == 1
    assert kafka_env.committed("dlq0") == 2


def test_a_job_near_the_message_size_limit_is_dead_lettered_in_full(kafka_env: KafkaEnv) -> None:
    """The copy plus its kj-dlq-* headers is larger than the producer's default limit (1,000,000 bytes)."""
    log = kafka_env.log_file()
    message = "failed on a large order " + "y" * 3000  # a long message makes the headers large too
    base = len(JsonSerializer().dumps(RaisingJob(log, message, payload="")))
    job = RaisingJob.perform_later(log, message, payload="x" * (998_000 - base))
    behind = RecordJob.set(queue="dlq0").perform_later(log, "behind")

    output = start_and_wait_for(kafka_env, log, behind.job_id)

    assert len(runs_of(log, job.job_id)) == 1, output
    original = read_topic(kafka_env.bootstrap, kafka_env.topic("dlq0"))[0]
    assert len(original.value()) > 997_000
    (dead,) = dead_letters(kafka_env, "dlq0")
    assert dead.value() == original.value()  # byte for byte, not a stub
    headers = headers_of(dead)
    assert "kj-dlq-stub" not in headers
    assert headers["kj-dlq-exception-message"] == message[:2000]
    assert kafka_env.committed("dlq0") == 2


@pytest.mark.kafka_jobs_overrides({"PRODUCER": {"message.max.bytes": 200_000}})
def test_a_dead_letter_that_can_never_be_written_in_full_becomes_a_stub_and_the_partition_goes_on(
    kafka_env: KafkaEnv,
) -> None:
    """Another producer wrote a message larger than this worker's producers may write (200,000 + 64 KiB)."""
    log = kafka_env.log_file()
    job = RaisingJob(log, "declined", payload="x" * 300_000)
    value = JsonSerializer().dumps(job)
    produce_raw(kafka_env, "dlq0", (value, [("kj-job", job.job_name.encode()), ("kj-id", job.job_id.encode())]))
    behind = RecordJob.set(queue="dlq0").perform_later(log, "behind")

    output = start_and_wait_for(kafka_env, log, behind.job_id)

    assert len(runs_of(log, job.job_id)) == 1, output
    (stub,) = dead_letters(kafka_env, "dlq0")
    assert not stub.value()
    headers = headers_of(stub)
    assert headers["kj-id"] == job.job_id and headers["kj-job"] == "tests.jobs.RaisingJob"
    assert headers["kj-dlq-source-topic"] == kafka_env.topic("dlq0")
    assert (headers["kj-dlq-source-partition"], headers["kj-dlq-source-offset"]) == ("0", "0")
    assert headers["kj-dlq-exception-class"] == "builtins.RuntimeError"
    assert headers["kj-dlq-exception-message"] == "declined"
    assert "too large" in headers["kj-dlq-stub"].lower()
    assert int(headers["kj-dlq-original-bytes"]) > 300_000
    line = next(line for line in output.splitlines() if "STUB" in line)
    assert f"id={job.job_id} {kafka_env.topic('dlq0')}/0@0" in line and "MSG_SIZE_TOO_LARGE" in line
    assert kafka_env.committed("dlq0") == 2

    # A stub cannot be replayed: it is listed as such, refused when selected, passed over by --all.
    listing = kafkadlq("list", "--queue", "dlq0").splitlines()
    assert "STUB" in listing[1] and f"id={job.job_id}" in listing[1]
    with pytest.raises(CommandError, match="are stubs"):
        kafkadlq("replay", "--queue", "dlq0", "--offsets", "0")
    everything = kafkadlq("replay", "--queue", "dlq0", "--all")
    assert "0 message(s) replayed" in everything and "passed over: 0:0 (stubs" in everything
    assert len(read_topic(kafka_env.bootstrap, kafka_env.topic("dlq0"))) == 2  # nothing was produced
    assert "passed over" in kafkadlq("list", "--queue", "dlq0").splitlines()[1]
    assert "0 message(s) replayed" in kafkadlq("replay", "--queue", "dlq0", "--all")


def test_a_long_exception_message_is_cut_by_characters_and_every_header_is_valid_utf8(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    message = "a" + "é" * 2500  # cut at 2000 bytes, the second byte of an "é" would be lost
    job = RaisingJob.perform_later(log, message)

    output = start_and_wait_for(kafka_env, log, job.job_id)

    (dead,) = dead_letters(kafka_env, "dlq0")
    headers = headers_of(dead)  # decodes every header as strict UTF-8
    assert headers["kj-dlq-exception-message"] == message[:2000], output
    assert "é" * 100 in headers["kj-dlq-traceback"]
