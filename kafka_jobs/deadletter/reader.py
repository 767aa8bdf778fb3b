"""Reading a DLQ topic to its end, without joining or disturbing any consumer group."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ..conf import KafkaJobsSettings, client_config, get_settings
from ..exceptions import BrokerUnavailable, ConfigurationError
from .message import DeadLetter

REPLAY_GROUP_SUFFIX = ".dlq-replay"
DEFAULT_READ_TIMEOUT = 30.0


def replay_group(settings: KafkaJobsSettings) -> str:
    """Return the consumer group that holds the replay cursors (never the worker's group)."""
    return settings.group_id + REPLAY_GROUP_SUFFIX


class DeadLetterTopic:
    """A DLQ topic opened for reading and replaying; use as a context manager (closes its consumer)."""

    def __init__(
        self, topic: str, settings: KafkaJobsSettings | None = None, timeout: float = DEFAULT_READ_TIMEOUT
    ) -> None:
        from ..topics import existing_topics

        self.topic = topic
        self.settings = settings or get_settings()
        self.timeout = timeout
        partitions = existing_topics(self.settings).get(topic)
        if partitions is None:
            raise ConfigurationError(
                f"The dead letter topic {topic!r} does not exist. It is created with the routed topics "
                "('manage.py kafkatopics create') and filled by the worker."
            )
        self.partitions = list(range(partitions))
        self.consumer = Consumer(
            {
                **self.settings.consumer,
                **client_config(self.settings),
                "client.id": self.settings.client_id + "-dlq",
                "group.id": replay_group(self.settings),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )

    def __enter__(self) -> DeadLetterTopic:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the consumer (it never joined a group, so nothing is rebalanced)."""
        self.consumer.close()

    def cursors(self) -> dict[int, int]:
        """Return the replay cursor of each partition (0 if nothing was replayed yet)."""
        wanted = [TopicPartition(self.topic, p) for p in self.partitions]
        try:
            committed = self.consumer.committed(wanted, timeout=self.timeout)
        except KafkaException as exc:
            raise BrokerUnavailable(
                f"Could not read the replay cursors of {self.topic!r} (group {replay_group(self.settings)!r}): {exc}"
            ) from exc
        return {tp.partition: max(tp.offset, 0) for tp in committed}

    def read(self, start: dict[int, int]) -> Iterator[Any]:
        """Yield the messages of the partitions in ``start`` from those offsets to the end of each.

        The end is where the consumer reports end-of-partition (not the high watermark from ListOffsets,
        which some brokers get wrong).
        """
        if not start:
            return
        self.consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in start.items()])
        pending = set(start)
        deadline = time.monotonic() + self.timeout
        last_error = ""
        try:
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    detail = f"; last error: {last_error}" if last_error else ""
                    raise BrokerUnavailable(
                        f"Did not reach the end of the dead letter topic {self.topic!r} within {self.timeout:.0f}s "
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
                        raise BrokerUnavailable(f"Reading the dead letter topic {self.topic!r} failed: {error.str()}")
                    else:  # the client retries by itself (e.g. a lost connection); the deadline bounds it
                        last_error = error.str()
                    continue
                if message.partition() in pending:
                    yield message
        finally:
            self.consumer.unassign()

    def commit_cursors(self, cursors: dict[int, int]) -> None:
        """Record new replay cursors for the replay group."""
        if not cursors:
            return
        offsets = [TopicPartition(self.topic, p, offset) for p, offset in cursors.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise BrokerUnavailable(
                f"The messages were replayed, but the replay cursor of {self.topic!r} could not be saved ({exc}): "
                "a later replay would replay them again."
            ) from exc


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
        cursors = dlq.cursors()
        kept: dict[int, collections.deque[DeadLetter]] = {p: collections.deque(maxlen=limit) for p in dlq.partitions}
        for message in dlq.read(dict.fromkeys(dlq.partitions, 0)):
            kept[message.partition()].append(DeadLetter.from_message(message, cursors.get(message.partition(), 0)))
    letters = [letter for partition in kept.values() for letter in partition]
    if limit is not None and len(letters) > limit:
        letters.sort(key=lambda d: (d.failed_at or "", d.partition, d.offset))
        letters = letters[-limit:]
    return sorted(letters, key=lambda d: (d.partition, d.offset))
