"""A job's retry count across a worker restart during its backoff, on whichever broker the tests run against.

The worker commits a failing job's count in the metadata of its partition's committed offset. A broker
that keeps commit metadata (Apache Kafka) hands it to the next worker, so the count goes on and the dead
letter says how often the job really ran; one that drops it (Tansu, the default test broker) cannot, and
the count starts again: the documented limit. The test asks the broker which kind it is, then asserts that
kind's behaviour; both branches assert something.
"""

from __future__ import annotations

import signal
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from kafka_jobs.producer import get_producer
from kafka_jobs.worker import ExitCode
from kafka_jobs.worker.committer import decode_failures
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.integration.test_failures import dead_letters, headers_of
from tests.jobs import FailingJob, read_records

pytestmark = pytest.mark.integration


def broker_keeps_commit_metadata(env: KafkaEnv, topic: str) -> bool:
    """Commit an offset with metadata in a throwaway group and read it back."""
    consumer = Consumer({"bootstrap.servers": env.bootstrap, "group.id": f"probe-{uuid.uuid4().hex[:8]}"})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 0, "kafka_jobs probe")], asynchronous=False)
        (committed,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return committed.metadata == "kafka_jobs probe"
    finally:
        consumer.close()


def committed_metadata(env: KafkaEnv, topic: str) -> str | None:
    consumer = Consumer({"bootstrap.servers": env.bootstrap, "group.id": env.group_id})
    try:
        (committed,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return committed.metadata
    finally:
        consumer.close()


def runs(log: str) -> list[int]:
    """The ``executions`` the job saw at each run (its attempt number)."""
    return [r["executions"] for r in read_records(log) if r["event"] == "ran"]


@pytest.mark.kafka_jobs_overrides({"BACKOFF": {"INITIAL": 60.0, "MAX": 60.0}})
def test_a_restart_during_the_backoff_keeps_the_retry_count_where_the_broker_keeps_commit_metadata(
    kafka_env: KafkaEnv,
) -> None:
    log = kafka_env.log_file()
    topic = kafka_env.topic("dlq")  # max_retries=1: the second failed run goes to the dead letter queue
    keeps_metadata = broker_keeps_commit_metadata(kafka_env, topic)
    job = FailingJob.set(queue="dlq").perform_later(log, 99)
    get_producer().flush(10)

    first = kafka_env.start_worker("--queues", "dlq")
    wait_for(lambda: runs(log) == [1] and "retrying in 60.00s" in first.output(), 60, message=first.output)
    if keeps_metadata:  # committed right after the failure, not only at a graceful stop
        wait_for(lambda: decode_failures(committed_metadata(kafka_env, topic), 0) == {0: 1}, 30)
    first.send(signal.SIGTERM)
    assert first.wait(30) == ExitCode.OK, first.output()

    second = kafka_env.start_worker("--queues", "dlq")
    wait_for(lambda: len(runs(log)) == 2, 60, message=second.output)

    if keeps_metadata:
        assert runs(log) == [1, 2]  # the second run is attempt 2, as without the restart
        (dead,) = wait_for(lambda: dead_letters(kafka_env, "dlq"), 30)
        assert headers_of(dead)["kj-id"] == job.job_id
        assert headers_of(dead)["kj-dlq-attempts"] == "2"
        wait_for(lambda: kafka_env.committed("dlq") == 1, 30)
        assert "failed runs restored from the committed offset (@0: 1)" in second.output()
    else:
        assert runs(log) == [1, 1]  # the count started again: the documented limit of such a broker
        wait_for(lambda: "retrying in 60.00s" in second.output(), 30, message=second.output)
        assert dead_letters(kafka_env, "dlq") == []
        assert committed_metadata(kafka_env, topic) is None
    second.send(signal.SIGTERM)
    assert second.wait(30) == ExitCode.OK, second.output()
