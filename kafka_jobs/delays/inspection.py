"""What waits in the delay tiers, for ``manage.py kafkascheduled``: counts and the next release per tier.

Reads one message per tier partition (its head, at the forwarders' committed offset) and takes the count
from the high watermark the broker reported with that fetch; it never reads a whole tier. The consumer
is assigned, not subscribed: it never joins the forwarders' group and never commits.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from ..conf import KafkaJobsSettings
from ..topics import existing_topics
from ..worker.consumer import consumer_config
from .forwarder import group_id
from .headers import MalformedDelay, read_delay
from .messages import release_ms
from .tiers import DelayLadder

READ_TIMEOUT = 10.0


@dataclasses.dataclass
class TierState:
    """One tier topic: how many messages wait in it, and when the oldest of them is released."""

    topic: str
    delay_ms: int | None
    partitions: int
    configured: bool  # in DELAY_TIERS (a tier dropped from the setting still drains)
    waiting: int = 0
    next_release_ms: int | None = None
    complete: bool = True  # False if a partition did not answer within the timeout

    def as_dict(self) -> dict[str, Any]:
        """Return the state as JSON-able values."""
        return dataclasses.asdict(self)


def reader_config(settings: KafkaJobsSettings, group: str) -> dict[str, Any]:
    """Return the configuration of a consumer that reads (assigned, never subscribed, never committing)."""
    return {**consumer_config(settings), "group.id": group}


def tier_states(settings: KafkaJobsSettings, timeout: float = READ_TIMEOUT) -> list[TierState]:
    """Return the state of every tier topic of this queue prefix, shortest delay first."""
    ladder = DelayLadder(settings.delay_tiers, settings.queue_prefix)
    existing = existing_topics(settings, timeout=timeout)
    configured = set(ladder.topics())
    states = [
        TierState(topic, ladder.delay_of_topic(topic), existing.get(topic, 0), topic in configured)
        for topic in sorted(
            configured | {t for t in existing if ladder.delay_of_topic(t) is not None},
            key=lambda t: ladder.delay_of_topic(t) or 0,
        )
    ]
    partitions = [TopicPartition(s.topic, p) for s in states for p in range(s.partitions)]
    if not partitions:
        return states
    heads = _read_heads(settings, partitions, timeout)
    by_topic = {s.topic: s for s in states}
    for (topic, _partition), head in heads.items():
        state = by_topic[topic]
        if head is None:
            state.complete = False
            continue
        count, release = head
        state.waiting += count
        if release is not None and (state.next_release_ms is None or release < state.next_release_ms):
            state.next_release_ms = release
    return states


def _read_heads(
    settings: KafkaJobsSettings, partitions: list[TopicPartition], timeout: float
) -> dict[tuple[str, int], tuple[int, int | None] | None]:
    """Return (messages waiting, release time of the head) per partition; None where no answer came in time."""
    ladder = DelayLadder(settings.delay_tiers, settings.queue_prefix)
    consumer = Consumer(reader_config(settings, f"{group_id(settings)}.inspect.{uuid.uuid4().hex[:8]}"))
    heads: dict[tuple[str, int], tuple[int, int | None] | None] = {(tp.topic, tp.partition): None for tp in partitions}
    try:
        committed = _committed(settings, partitions, timeout)
        consumer.assign(
            [
                TopicPartition(tp.topic, tp.partition, committed.get((tp.topic, tp.partition), OFFSET_BEGINNING))
                for tp in partitions
            ]
        )
        deadline = time.monotonic() + timeout
        pending = set(heads)
        while pending and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            key = (message.topic(), message.partition())
            if key not in pending:
                continue
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                continue
            pending.discard(key)
            if error is not None:  # the end: nothing waits
                heads[key] = (0, None)
                continue
            high = consumer.get_watermark_offsets(TopicPartition(*key), cached=True)[1]  # reported with this fetch
            offset = message.offset()
            heads[key] = (max(1, high - offset) if offset is not None else 1, _release(message, ladder))
    finally:
        consumer.close()
    return heads


def _committed(
    settings: KafkaJobsSettings, partitions: list[TopicPartition], timeout: float
) -> dict[tuple[str, int], int]:
    """Return the forwarders' committed offsets (read without joining their group)."""
    consumer = Consumer(reader_config(settings, group_id(settings)))
    try:
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in consumer.committed(partitions, timeout=timeout)
            if tp.offset >= 0
        }
    finally:
        consumer.close()


def _release(message: Any, ladder: DelayLadder) -> int | None:
    try:
        return release_ms(read_delay(message.headers()), ladder.delay_of_topic(message.topic()))
    except MalformedDelay:
        return None
