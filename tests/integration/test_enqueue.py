"""Enqueueing against a real broker: what reaches the topic, in which order, with which due time (issue 7)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from django.db import transaction
from django.utils import timezone

from kafka_jobs import perform_all_later
from kafka_jobs.producer import get_producer
from kafka_jobs.serializer import Envelope, JsonSerializer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.jobs import AfterCommitSeqJob, AtOnceSeqJob, RecordJob, SeqJob, SyncSeqJob, read_records

pytestmark = pytest.mark.integration

READ_TIMEOUT = 20.0


def read_envelopes(kafka_env: KafkaEnv, queue: str) -> list[Envelope]:
    """Return the decoded messages of ``queue``'s topic, partition by partition in offset order."""
    topic = kafka_env.topic(queue)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_env.bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = set(consumer.list_topics(topic, timeout=READ_TIMEOUT).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages = []

        def at_end_of_every_partition() -> bool:
            message = consumer.poll(0.2)
            if message is None:
                return False
            if message.error() is None:
                messages.append(message)
            else:
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                partitions.discard(message.partition())
            return not partitions

        wait_for(
            at_end_of_every_partition, timeout=READ_TIMEOUT, interval=0, message=f"{topic} was not read to its end"
        )
    finally:
        consumer.close()
    messages.sort(key=lambda m: (m.partition(), m.offset()))
    return [JsonSerializer().loads(m.value()) for m in messages]


def seqs(envelopes: list[Envelope]) -> list[int]:
    return [envelope.args[1] for envelope in envelopes]


def test_a_batch_mixing_sync_and_async_jobs_keeps_its_order_on_one_partition(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    kinds = [SeqJob, SyncSeqJob, SeqJob, SeqJob, SyncSeqJob, SyncSeqJob, SeqJob, SyncSeqJob]

    assert perform_all_later([kind(log, seq) for seq, kind in enumerate(kinds)]) == len(kinds)
    get_producer().flush(10)

    assert seqs(read_envelopes(kafka_env, "single")) == list(range(len(kinds)))
    worker = kafka_env.run_worker("--burst", "--queues", "single")
    assert worker.proc.returncode == 0, worker.output()
    assert [r["seq"] for r in read_records(log)] == list(range(len(kinds)))  # and they ran in that order


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_batch_sends_only_its_jobs_that_do_not_wait_for_the_commit(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    with pytest.raises(RuntimeError), transaction.atomic():
        # The first job of each batch used to decide for the whole batch.
        perform_all_later([AfterCommitSeqJob(log, 0), AtOnceSeqJob(log, 1), AfterCommitSeqJob(log, 2)])
        perform_all_later([AtOnceSeqJob(log, 3), AfterCommitSeqJob(log, 4), AtOnceSeqJob(log, 5)])
        raise RuntimeError("roll back")
    get_producer().flush(10)

    envelopes = read_envelopes(kafka_env, "single")

    assert seqs(envelopes) == [1, 3, 5]
    assert {envelope.job for envelope in envelopes} == {AtOnceSeqJob.job_name}


@pytest.mark.django_db(transaction=True)
def test_a_committed_batch_sends_its_waiting_jobs_at_commit_after_the_others(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    with transaction.atomic():
        perform_all_later([AfterCommitSeqJob(log, 0), AtOnceSeqJob(log, 1), AfterCommitSeqJob(log, 2)])
        get_producer().flush(10)
        assert seqs(read_envelopes(kafka_env, "single")) == [1]  # the commit has not happened yet
    get_producer().flush(10)

    assert seqs(read_envelopes(kafka_env, "single")) == [1, 0, 2]


def test_wait_counts_from_the_enqueue_not_from_set(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    later = RecordJob.set(wait=30)  # as if kept at module level...
    RecordJob.set(partition=0).perform_later(log, "first")  # ...while time passes: a broker round trip
    get_producer().flush(10)

    before = timezone.now()
    job = later.perform_later(log, "later")
    after = timezone.now()
    get_producer().flush(10)

    # Due in 30 s, it waits in the longest delay tier of the test ladder (kafka_jobs.delay.3s), not in its queue.
    [envelope] = [e for e in read_envelopes(kafka_env, "kafka_jobs.delay.3s") if e.job_id == job.job_id]
    assert envelope.enqueued_at is not None and envelope.scheduled_at is not None
    assert before <= envelope.enqueued_at <= after
    assert envelope.scheduled_at - envelope.enqueued_at == dt.timedelta(seconds=30)
