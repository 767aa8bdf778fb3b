"""The bounded reader of the compacted ops topics against a real broker: latest per key, only a tail, and a
long-lived reader that answers at once when nothing arrived."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from kafka_jobs.conf import get_settings
from kafka_jobs.exceptions import BrokerUnavailable
from kafka_jobs.ops.latest import LatestReader, read_latest
from tests.helpers import create_topic, unique_topic_name

pytestmark = pytest.mark.integration


def produce(bootstrap: str, topic: str, *records: tuple[bytes, bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in records:
        producer.produce(topic, value, key=key)
        producer.flush(10)  # one at a time: each its own batch


@pytest.mark.django_db
def test_latest_value_per_key_from_a_bounded_tail(kafka_bootstrap: str, request: pytest.FixtureRequest) -> None:
    topic = unique_topic_name(request.node.name)
    create_topic(kafka_bootstrap, topic)
    produce(kafka_bootstrap, topic, (b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (b"c", b"2"))
    settings = get_settings().__class__(bootstrap_servers=kafka_bootstrap)
    assert read_latest(settings, topic, limit=100, timeout=10) == {b"a": b"2", b"b": b"1", b"c": b"2"}
    assert read_latest(settings, topic, limit=2, timeout=10) == {b"c": b"2"}  # only the last two records


@pytest.mark.django_db
def test_a_long_lived_reader_reads_only_what_is_new(kafka_bootstrap: str, request: pytest.FixtureRequest) -> None:
    topic = unique_topic_name(request.node.name)
    create_topic(kafka_bootstrap, topic)
    settings = get_settings().__class__(bootstrap_servers=kafka_bootstrap)
    reader = LatestReader(settings, topic, limit=100)
    try:
        assert reader.refresh(10) == {}
        started = time.monotonic()
        assert reader.refresh(10) == {}  # an idle, empty topic: no wait for an end already reached
        assert time.monotonic() - started < 5
        produce(kafka_bootstrap, topic, (b"a", b"1"))
        assert reader.refresh(10) == {b"a": b"1"}
        produce(kafka_bootstrap, topic, (b"a", b"2"), (b"b", b"1"))
        assert reader.refresh(10) == {b"a": b"2", b"b": b"1"}
        started = time.monotonic()
        assert reader.refresh(10) == {b"a": b"2", b"b": b"1"}
        assert time.monotonic() - started < 5
    finally:
        reader.close()


def test_an_unreachable_broker_is_reported_naming_the_setting_to_check() -> None:
    settings = get_settings().__class__(bootstrap_servers="127.0.0.1:1")  # a closed port: refused at once

    with pytest.raises(
        BrokerUnavailable, match=r"Could not reach Kafka at '127.0.0.1:1' .*Check KAFKA_JOBS\['BOOTSTRAP_SERVERS'\]"
    ):
        read_latest(settings, "kafka_jobs.reports", limit=1, timeout=1)
