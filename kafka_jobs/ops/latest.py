"""Read the latest record per key of a small compacted topic, from a bounded tail, without a consumer group.

The reports and commands topics are compacted, but compaction runs late (or, on some development
brokers, never), so a reader starts at most ``limit`` records before the end of each partition: a page
never reads a whole topic. The end is found by reading until the consumer says it reached it
(``enable.partition.eof``), which does not depend on a broker's ListOffsets answer.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from ..conf import KafkaJobsSettings, client_config
from ..exceptions import BrokerUnavailable, ConfigurationError

BATCH = 500


def reader_config(settings: KafkaJobsSettings, fetch_wait_ms: int = 100) -> dict[str, Any]:
    """Return the configuration of a group-less reader (the consumer's security settings apply)."""
    extra = {k: v for k, v in settings.consumer.items() if k.startswith(("security.", "sasl.", "ssl."))}
    return {
        **client_config(settings),
        **extra,
        # Required by the client even without subscribe(); never joined, never committed to.
        "group.id": f"{settings.group_id}.ops-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": fetch_wait_ms,
    }


class LatestReader:
    """Keeps the latest value per key of ``topic``; each ``refresh`` reads only what is new (thread-safe)."""

    def __init__(self, settings: KafkaJobsSettings, topic: str, *, limit: int, fetch_wait_ms: int = 100) -> None:
        self.settings = settings
        self.fetch_wait_ms = fetch_wait_ms
        self.topic = topic
        self.limit = limit
        self.latest: dict[bytes, bytes | None] = {}
        self._lock = threading.Lock()
        self._consumer: Any = None
        self._pid = 0
        self._partitions: list[int] = []
        self._start: dict[int, int] = {}  # partition -> offset it was assigned at
        self._ended: set[int] = set()  # partitions read to their end at least once

    def _open(self, timeout: float) -> None:
        consumer = Consumer(reader_config(self.settings, self.fetch_wait_ms))
        try:
            metadata = consumer.list_topics(self.topic, timeout=timeout)
        except KafkaException as exc:
            consumer.close()
            raise BrokerUnavailable(
                f"Could not reach Kafka at {self.settings.bootstrap_servers!r} to read {self.topic!r} ({exc}). "
                "Check KAFKA_JOBS['BOOTSTRAP_SERVERS'] and that the broker is running."
            ) from exc
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            consumer.close()
            raise ConfigurationError(
                f"Topic {self.topic!r} does not exist. Create it with 'manage.py kafkatopics create' or start a "
                "worker with --create-topics."
            )
        self._partitions = sorted(topic.partitions)
        assignment = []
        for partition in self._partitions:
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=timeout)
            except KafkaException:
                low, high = OFFSET_BEGINNING, 0
            start = max(low, high - self.limit) if low >= 0 else OFFSET_BEGINNING
            self._start[partition] = start
            assignment.append(TopicPartition(self.topic, partition, start))
        consumer.assign(assignment)
        self._ended = set()
        self._consumer = consumer
        self._pid = os.getpid()

    def refresh(self, timeout: float = 5.0) -> dict[bytes, bytes | None]:
        """Read what arrived since the last refresh (up to the end, or ``timeout``); return key -> latest value."""
        with self._lock:
            if self._consumer is None or self._pid != os.getpid():  # a forked web worker gets its own
                self.latest = {}
                self._open(timeout)
            self._read_to_end(timeout)
            return dict(self.latest)

    def _read_to_end(self, timeout: float) -> None:
        consumer = self._consumer
        deadline = time.monotonic() + timeout
        at_end: set[int] = set()
        # The end is announced once: a partition read to its end before is still there if nothing came since.
        for partition in self._ended:
            tp = TopicPartition(self.topic, partition)
            position = consumer.position([tp])[0].offset
            position = position if position >= 0 else max(self._start.get(partition, 0), 0)  # nothing read yet
            if position >= self._end_of(tp, timeout):
                at_end.add(partition)
        while len(at_end) < len(self._partitions) and (left := deadline - time.monotonic()) > 0:
            for message in consumer.consume(BATCH, min(left, 0.2)):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition())
                        self._ended.add(message.partition())
                    continue
                key = message.key()
                if key is not None:
                    self.latest[key] = message.value()

    def _end_of(self, tp: TopicPartition, timeout: float) -> int:
        """Return the end offset of ``tp``: the larger of the broker's answer and the last fetch's.

        Asked, because the last fetch may predate new records; and compared with the fetch, because some
        brokers answer an end that is too low after batched produces.
        """
        consumer = self._consumer
        _low, cached = consumer.get_watermark_offsets(tp, cached=True)
        try:
            _low, asked = consumer.get_watermark_offsets(tp, timeout=min(timeout, 5.0), cached=False)
        except KafkaException:
            asked = -1
        return max(cached, asked)

    def close(self) -> None:
        """Close the consumer."""
        with self._lock:
            if self._consumer is not None and self._pid == os.getpid():
                self._consumer.close()
            self._consumer = None


def read_latest(settings: KafkaJobsSettings, topic: str, *, limit: int, timeout: float) -> dict[bytes, bytes | None]:
    """Return key -> latest value of ``topic`` read from its last ``limit`` records per partition."""
    reader = LatestReader(settings, topic, limit=limit)
    try:
        return reader.refresh(timeout)
    finally:
        reader.close()
