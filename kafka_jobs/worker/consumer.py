"""The worker's Kafka consumer: its configuration, the factory that builds it, and the calls the worker makes.

``runkafkaworker`` passes ``KafkaConsumerFactory(settings)`` to the ``Worker``; tests pass a factory of a fake
consumer instead, so flow control, commits and rebalances can be tested without a broker. Only the poll
thread calls the consumer: confluent-kafka lets one call in at a time, so a commit from another thread
would wait for the poll thread's ``poll()`` to return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, overload

from confluent_kafka import Consumer, KafkaError, TopicPartition

from ..conf import KafkaJobsSettings, client_config

CommitCallback = Callable[[KafkaError | None, list[TopicPartition]], None]
RebalanceCallback = Callable[[Any, list[TopicPartition]], None]


class JobConsumer(Protocol):
    """The part of ``confluent_kafka.Consumer`` the worker uses."""

    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = ...,
        on_revoke: RebalanceCallback | None = ...,
        on_lost: RebalanceCallback | None = ...,
    ) -> None: ...
    def poll(self, timeout: float = ...) -> Any: ...
    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Any]: ...
    def pause(self, partitions: list[TopicPartition]) -> None: ...
    def resume(self, partitions: list[TopicPartition]) -> None: ...
    def seek(self, partition: TopicPartition) -> None: ...
    def assignment(self) -> list[TopicPartition]: ...
    @overload
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True] = ...) -> None: ...
    @overload
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]: ...
    def committed(self, partitions: list[TopicPartition], timeout: float = ...) -> list[TopicPartition]: ...
    def close(self) -> None: ...


# Builds the consumer; ``on_commit`` must be called (on the poll thread) with the result of each async commit.
ConsumerFactory = Callable[[CommitCallback], JobConsumer]


def consumer_config(settings: KafkaJobsSettings) -> dict[str, Any]:
    """Return the librdkafka consumer configuration: manual offsets always; the user's CONSUMER on top."""
    return {
        **client_config(settings),
        "group.id": settings.group_id,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        # Only the partitions that change owner are revoked, so a rebalance does not make every worker
        # wait for its running jobs (librdkafka's default "range,roundrobin" revokes everything).
        "partition.assignment.strategy": "cooperative-sticky",
        # librdkafka prefetches up to 100k messages per partition by default; keep its queue near our buffer
        # (so a backlog of a million jobs costs no more memory than ten thousand), and with such a small queue
        # do not wait the default second before fetching again (its documentation recommends lowering it):
        # quick jobs drain both queues in milliseconds, and a longer wait became a gap between jobs.
        "queued.min.messages": settings.max_buffered_messages,
        "fetch.queue.backoff.ms": 10,
        **settings.consumer,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
    }


class KafkaConsumerFactory:
    """Build the worker's ``confluent_kafka.Consumer`` from the settings."""

    def __init__(self, settings: KafkaJobsSettings) -> None:
        self.settings = settings

    def __call__(self, on_commit: CommitCallback) -> JobConsumer:
        """Return a new consumer that reports async commit results to ``on_commit``."""
        consumer: JobConsumer = Consumer({**consumer_config(self.settings), "on_commit": on_commit})
        return consumer
