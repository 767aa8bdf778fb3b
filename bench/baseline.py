"""The raw confluent-kafka baselines: what the same machine and broker do without kafka_jobs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from kafka_jobs.conf import KafkaJobsSettings
from kafka_jobs.producer import producer_config
from kafka_jobs.worker.consumer import consumer_config
from kafka_jobs.worker.listener import BATCH_SIZE

from .payload import RawMessage, produce_all

__all__ = ["LatencyConsumer", "RawMessage", "connected_producer", "consume", "produce_async_rate", "produce_sync_rate"]
from .probe import Probe

COMMIT_EVERY = 1000  # messages between async commits of the processed offsets (ours: whenever they move)


def connected_producer(settings: KafkaJobsSettings, message: RawMessage) -> Producer:
    """Return a producer with kafka_jobs' configuration that has delivered ``message`` (so it is connected)."""
    producer = Producer(producer_config(settings))
    producer.produce(message.topic, message.value, headers=message.headers)
    if producer.flush(30):
        raise RuntimeError(f"raw producer: no acknowledgement from {settings.bootstrap_servers} within 30s")
    return producer


def produce_async_rate(settings: KafkaJobsSettings, messages: Sequence[RawMessage]) -> float:
    """Return messages/s for produce() of every message then one flush (the producer config of kafka_jobs)."""
    return produce_async_cost(settings, messages)[0]


def produce_async_cost(settings: KafkaJobsSettings, messages: Sequence[RawMessage]) -> tuple[float, float]:
    """Return messages/s as ``produce_async_rate`` does, and the calling thread's CPU seconds per message."""
    producer = connected_producer(settings, messages[0])
    started, cpu = time.perf_counter(), time.thread_time()
    produce_all(producer, messages)
    return len(messages) / (time.perf_counter() - started), (time.thread_time() - cpu) / len(messages)


def produce_sync_rate(settings: KafkaJobsSettings, messages: Sequence[RawMessage], batch: int = 1) -> float:
    """Return messages/s when every ``batch`` messages wait for their acknowledgements (flush)."""
    producer = connected_producer(settings, messages[0])
    started = time.perf_counter()
    for start in range(0, len(messages), batch):
        for message in messages[start : start + batch]:
            producer.produce(message.topic, message.value, headers=message.headers)
        if producer.flush(30):
            raise RuntimeError("raw sync produce: no acknowledgement within 30s")
    return len(messages) / (time.perf_counter() - started)


def noop(_data: Any) -> None:
    """The job the baseline 'runs'."""


def consume(settings: KafkaJobsSettings, topic: str, expected: int, timeout: float = 300.0) -> Probe:
    """Poll, json.loads, call a no-op and commit every COMMIT_EVERY messages until ``expected`` were seen.

    The probe ticks once per message, as the bench jobs do, so rates compare first-to-last message.
    """
    consumer = Consumer(consumer_config(settings))
    consumer.subscribe([topic])
    probe = Probe()
    positions: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while probe.count < expected and time.monotonic() < deadline:
            for message in _fetch(consumer, 0.25):
                if message.error() is not None:
                    continue
                noop(json.loads(message.value()))
                probe.tick()
                positions[message.partition()] = message.offset() + 1
                if probe.count % COMMIT_EVERY == 0:
                    consumer.commit(offsets=_offsets(topic, positions), asynchronous=True)
        consumer.commit(offsets=_offsets(topic, positions), asynchronous=False)
    finally:
        consumer.close()
    if probe.count < expected:
        raise RuntimeError(f"raw consumer saw {probe.count} of {expected} messages within {timeout:.0f}s")
    return probe


def _fetch(consumer: Consumer, timeout: float) -> list[Any]:
    """Wait up to ``timeout`` for one message, then take what is already fetched: the worker's poll pattern.

    (``consume(n, timeout)`` alone would wait for n messages, adding up to ``timeout`` of latency.)
    """
    first = consumer.poll(timeout)
    return [] if first is None else [first, *consumer.consume(BATCH_SIZE - 1, 0)]


def _offsets(topic: str, positions: dict[int, int]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition, offset) for partition, offset in positions.items()]


class LatencyConsumer:
    """A raw consumer thread that records now - args[0] (the send time) for every message it reads."""

    def __init__(self, settings: KafkaJobsSettings, topic: str) -> None:
        self.latencies: dict[str, list[float]] = {}
        self._consumer = Consumer(consumer_config(settings))
        self._consumer.subscribe([topic])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-latency-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in _fetch(self._consumer, 0.1):
                if message.error() is None:
                    received = time.time()
                    sent_at, tag = json.loads(message.value())["args"]
                    self.latencies.setdefault(tag, []).append(received - sent_at)
        self._consumer.close()

    def count(self, tag: str) -> int:
        """Return how many messages tagged ``tag`` arrived."""
        return len(self.latencies.get(tag, ()))

    def stop(self) -> None:
        """Stop polling and close the consumer."""
        self._stop.set()
        self._thread.join(10)
