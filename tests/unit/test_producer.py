"""JobProducer without a broker: what ``produce_async`` hands to confluent-kafka, and how a failure is logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError

from kafka_jobs.backends.kafka import build_message
from kafka_jobs.conf import get_settings
from kafka_jobs.job import Job
from kafka_jobs.producer import JobProducer, OutgoingMessage
from kafka_jobs.serializer import get_serializer
from tests.jobs import RecordJob


class FakeClient:
    """Records each produce call's arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, **kwargs: Any) -> None:
        self.calls.append({"topic": topic, "value": value, "key": key, **kwargs})


class DeliveredMessage:
    """What confluent-kafka passes to a delivery callback (its headers are None there)."""

    def __init__(self, message: OutgoingMessage) -> None:
        self.message = message

    def topic(self) -> str:
        return self.message.topic

    def value(self) -> bytes:
        return self.message.value

    def headers(self) -> None:
        return None


def job_producer() -> tuple[JobProducer, FakeClient]:
    producer = JobProducer.__new__(JobProducer)  # no librdkafka client, no callback thread
    producer.settings = get_settings()
    client = FakeClient()
    producer._producer = client  # type: ignore[assignment]
    return producer, client


def job_message() -> tuple[Job, OutgoingMessage]:
    job = RecordJob("log", "text")
    return job, build_message(job, get_serializer().dumps(job))


def test_async_messages_share_one_delivery_callback() -> None:
    producer, client = job_producer()
    producer.produce([job_message()[1], job_message()[1]], sync=False)
    callbacks = [call["on_delivery"] for call in client.calls]
    assert callbacks[0] is callbacks[1]  # no object bound to each message


def test_an_async_delivery_failure_is_logged_with_the_job_name_and_id(caplog: pytest.LogCaptureFixture) -> None:
    producer, client = job_producer()
    job, message = job_message()
    producer.produce([message], sync=False)
    on_delivery = client.calls[0]["on_delivery"]
    with caplog.at_level(logging.ERROR, logger="kafka_jobs.producer"):
        on_delivery(None, DeliveredMessage(message))  # delivered: nothing to say
        assert caplog.records == []
        on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), DeliveredMessage(message))
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"Delivery of job tests.jobs.RecordJob {job.job_id} to topic {message.topic} failed: Local: Message timed out."
    )
    assert "NOT enqueued" in record.getMessage()


def test_a_failed_message_that_is_not_an_envelope_is_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    producer, client = job_producer()
    message = OutgoingMessage("kj.other", b"not json")
    producer.produce([message], sync=False)
    with caplog.at_level(logging.ERROR, logger="kafka_jobs.producer"):
        client.calls[0]["on_delivery"](KafkaError(KafkaError._MSG_TIMED_OUT), DeliveredMessage(message))
    [record] = caplog.records
    assert record.getMessage().startswith("Delivery of a message to topic kj.other failed")
