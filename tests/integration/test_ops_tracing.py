"""Trace context through a real broker: the headers perform_later writes reach the job's queue topic, also
after waiting in a delay tier (the forwarder keeps them)."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, TopicPartition
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from kafka_jobs.producer import get_producer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.jobs import DelayedJob, read_records

pytestmark = pytest.mark.integration


def queue_headers(kafka_env: KafkaEnv, queue: str, partition: int, count: int) -> list[dict[str, bytes]]:
    """Return the headers of the first ``count`` messages of a partition of ``queue``."""
    consumer = Consumer({"bootstrap.servers": kafka_env.bootstrap, "group.id": "t-reader", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(kafka_env.topic(queue), partition, 0)])
        headers: list[dict[str, bytes]] = []
        wait_for(
            lambda: (
                headers.extend(dict(m.headers() or []) for m in consumer.consume(count, 0.5) if not m.error())
                or len(headers) >= count
            ),
            timeout=30,
        )
        return headers
    finally:
        consumer.close()


@pytest.mark.django_db(transaction=True)
def test_trace_context_reaches_the_queue_topic_directly_and_through_a_delay_tier(
    kafka_env: KafkaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", TracerProvider())
    log = kafka_env.log_file()
    with trace.get_tracer("web").start_as_current_span("request") as request:
        DelayedJob.set(partition=0).perform_later(log, "now")
        DelayedJob.set(partition=0, wait=1.0).perform_later(log, "later")
    get_producer().flush(10)
    trace_id = f"{request.get_span_context().trace_id:032x}"
    worker = kafka_env.start_worker()
    wait_for(lambda: len(read_records(log)) == 2, timeout=60, message=lambda: worker.output()[-3000:])

    headers = queue_headers(kafka_env, "delayed", 0, 2)
    assert [h["traceparent"].decode().split("-")[1] for h in headers] == [trace_id, trace_id]
    assert not any(name.startswith("kj-delay") for h in headers for name in h)
