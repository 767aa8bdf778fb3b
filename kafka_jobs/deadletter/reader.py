"""Reading a DLQ topic and its replay ledger, without joining or disturbing any consumer group."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ..conf import KafkaJobsSettings, client_config, get_settings
from ..exceptions import BrokerUnavailable, ConfigurationError
from ..producer import OutgoingMessage, get_producer
from .ledger import LEDGER_TOPIC_CONFIG, Ledger, ledger_topic
from .message import DeadLetter

DEFAULT_READ_TIMEOUT = 30.0


class DeadLetterTopic:
    """A DLQ topic opened for reading and replaying; use as a context manager (closes its consumer)."""

    def __init__(
        self, topic: str, settings: KafkaJobsSettings | None = None, timeout: float = DEFAULT_READ_TIMEOUT
    ) -> None:
        from ..topics import ADMIN_TIMEOUT, existing_topics

        self.topic = topic
        self.ledger_topic = ledger_topic(topic)
        self.settings = settings or get_settings()
        self.timeout = timeout
        existing = existing_topics(self.settings, timeout=min(timeout, ADMIN_TIMEOUT))
        partitions = existing.get(topic)
        if partitions is None:
            raise ConfigurationError(
                f"The dead letter topic {topic!r} does not exist. It is created with the routed topics "
                "('manage.py kafkatopics create') and filled by the worker."
            )
        self.partitions = list(range(partitions))
        self.has_ledger = self.ledger_topic in existing
        # Assigned partitions only: it never joins a group and never commits, so no group is disturbed.
        self.consumer = Consumer(
            {
                **self.settings.consumer,
                **client_config(self.settings),
                "client.id": self.settings.client_id + "-dlq",
                "group.id": self.settings.group_id + ".dlq-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                # A reader waits for the end of what it reads: don't let the broker hold each fetch 500 ms.
                "fetch.wait.max.ms": 100,
            }
        )

    def __enter__(self) -> DeadLetterTopic:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the consumer (it never joined a group, so nothing is rebalanced)."""
        self.consumer.close()

    def ledger(self) -> Ledger:
        """Read the replay ledger to its end (empty if nothing was ever replayed)."""
        if not self.has_ledger:
            return Ledger()
        return Ledger.fold(message.value() for message in self._read(self.ledger_topic, {0: 0}))

    def append_to_ledger(self, record: bytes) -> None:
        """Write one record to the replay ledger (created first if it does not exist) and wait for the ack."""
        if not self.has_ledger:
            from ..topics import create_topic

            create_topic(self.settings, self.ledger_topic, partitions=1, config=LEDGER_TOPIC_CONFIG)
            self.has_ledger = True
        get_producer().produce(
            [OutgoingMessage(self.ledger_topic, record, partition=0, description=f"replay ledger of {self.topic}")],
            sync=True,
        )

    def letters(
        self, start: dict[int, int], stop: dict[int, int] | None = None, ledger: Ledger | None = None
    ) -> Iterator[DeadLetter]:
        """Yield the DLQ messages from ``start`` (to ``stop``, see ``read``) with their replay state.

        A page of a large DLQ is read this way without reading the rest of it; the ledger (read once, or
        given) is small whatever the size of the DLQ.
        """
        ledger = ledger if ledger is not None else self.ledger()
        for message in self.read(start, stop):
            yield DeadLetter.from_message(message, ledger.state(message.partition(), message.offset()))

    def read(self, start: dict[int, int], stop: dict[int, int] | None = None) -> Iterator[Any]:
        """Yield the DLQ messages of the partitions in ``start`` from those offsets to the end of each.

        The end is where the consumer reports end-of-partition (not the high watermark from ListOffsets,
        which some brokers get wrong), or the offset in ``stop`` (excluded) if it comes first: a page of a
        large DLQ is read without reading the rest.
        """
        return self._read(self.topic, start, stop or {})

    def bounds(self) -> dict[int, tuple[int, int]]:
        """Return ``partition -> (first offset, end offset)`` of the DLQ, reading at most one fetch per partition.

        The end listed by the broker may be too low (some brokers list the start of the last batch), so each
        partition is fetched once from there: the high watermark that comes with the fetch is exact. A page of
        a large DLQ is found from these bounds without reading the rest of it.
        """
        listed = {partition: self._offsets(self.topic, partition) for partition in self.partitions}
        self.consumer.assign([TopicPartition(self.topic, p, high) for p, (_low, high) in listed.items()])
        bounds = dict(listed)
        pending = set(listed)
        deadline = time.monotonic() + self.timeout
        try:
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerUnavailable(
                        f"No answer from the broker for {self.topic!r} partitions {sorted(pending)} within "
                        f"{self.timeout:.0f}s. Is the broker reachable?"
                    )
                message = self.consumer.poll(min(left, 1.0))
                fetched = message.partition() if message is not None else None
                if message is None or fetched is None or fetched not in pending:
                    continue
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    if error.fatal():
                        raise BrokerUnavailable(f"Reading the topic {self.topic!r} failed: {error.str()}")
                    continue
                pending.discard(fetched)
                _low, watermark = self.consumer.get_watermark_offsets(TopicPartition(self.topic, fetched), cached=True)
                seen = (message.offset() or 0) + (1 if error is None else 0)  # an end-of-partition names the end
                low, high = listed[fetched]
                bounds[fetched] = (low, max(high, int(watermark), seen))
        finally:
            self.consumer.unassign()
        return bounds

    def _end(self, topic: str, partition: int) -> int:
        """Return the partition's end as the broker lists it: exact on Apache Kafka, lower on some brokers."""
        return self._offsets(topic, partition)[1]

    def _offsets(self, topic: str, partition: int) -> tuple[int, int]:
        """Return the partition's first offset and its end as the broker lists them (see ``_end``)."""
        try:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=self.timeout)
        except KafkaException as exc:
            raise BrokerUnavailable(f"Could not read the offsets of {topic!r} partition {partition}: {exc}") from exc
        return int(low), int(high)

    def _read(self, topic: str, start: dict[int, int], stop: dict[int, int] | None = None) -> Iterator[Any]:
        stop = dict(stop or {})
        pending = {p for p, offset in start.items() if offset < stop.get(p, offset + 1)}
        if not pending:
            return
        # A fetch beyond the end may get no answer at all from some brokers (neither messages nor an
        # end-of-partition): start at most at the listed end, so the end is always reached.
        self.consumer.assign([TopicPartition(topic, p, min(start[p], self._end(topic, p))) for p in pending])
        deadline = time.monotonic() + self.timeout
        last_error = ""
        try:
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    detail = f"; last error: {last_error}" if last_error else ""
                    raise BrokerUnavailable(
                        f"Did not reach the end of the topic {topic!r} within {self.timeout:.0f}s "
                        f"(partitions {sorted(pending)} still being read{detail}). Is the broker reachable?"
                    )
                message = self.consumer.poll(min(left, 1.0))
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                    elif error.fatal():
                        raise BrokerUnavailable(f"Reading the topic {topic!r} failed: {error.str()}")
                    else:  # the client retries by itself (e.g. a lost connection); the deadline bounds it
                        last_error = error.str()
                    continue
                partition, offset = message.partition(), message.offset()
                if partition not in pending or offset is None or offset < start[partition]:
                    continue
                end = stop.get(partition)
                if end is not None and offset >= end:
                    pending.discard(partition)
                    continue
                yield message
                if end is not None and offset + 1 >= end:
                    pending.discard(partition)
        finally:
            self.consumer.unassign()


def read_dead_letters(
    topic: str,
    *,
    limit: int | None = None,
    settings: KafkaJobsSettings | None = None,
    timeout: float = DEFAULT_READ_TIMEOUT,
) -> list[DeadLetter]:
    """Return the messages of DLQ ``topic`` in offset order (the ``limit`` most recent if given).

    Raises:
        ConfigurationError: the topic does not exist.
        BrokerUnavailable: the broker could not be read within ``timeout``.
    """
    with DeadLetterTopic(topic, settings, timeout) as dlq:
        kept: dict[int, collections.deque[DeadLetter]] = {p: collections.deque(maxlen=limit) for p in dlq.partitions}
        for letter in dlq.letters(dict.fromkeys(dlq.partitions, 0)):
            kept[letter.partition].append(letter)
    letters = [letter for partition in kept.values() for letter in partition]
    if limit is not None and len(letters) > limit:
        letters.sort(key=lambda d: (d.failed_at or "", d.partition, d.offset))
        letters = letters[-limit:]
    return sorted(letters, key=lambda d: (d.partition, d.offset))
