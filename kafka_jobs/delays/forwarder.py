"""The delay forwarder: moves waiting jobs from tier to tier and into their queue topics when due.

It has its own consumer, in its own group (``<GROUP_ID>.delays``), so any worker process can own tier
partitions and several share them; and its own producer. Everything runs on one thread. Per tier
partition it holds at most ``MAX_BUFFERED_MESSAGES`` messages (the partition is paused beyond that),
forwards each one when released (never before), waits for the broker's acknowledgement, and only then
commits past it: a crash between the two forwards a job twice (same id, same envelope), never loses one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from ..conf import KafkaJobsSettings
from ..producer import OutgoingMessage, producer_config
from ..worker.consumer import consumer_config
from .headers import MalformedDelay, read_delay
from .messages import Waiting, next_hop, now_ms, release_ms
from .tiers import DelayLadder
from .window import TierWindow

logger = logging.getLogger("kafka_jobs.delays")

BATCH_SIZE = 500
POLL_TIMEOUT = 0.25
# A failed forward is retried after this long (the partition's other messages wait; other partitions don't).
RETRY_DELAY_MS = 1000


def group_id(settings: KafkaJobsSettings) -> str:
    """Return the consumer group of the forwarders: separate from the workers', shared by all processes."""
    return f"{settings.group_id}.delays"


class DelayForwarder:
    """Consume every tier topic of this queue prefix and forward each job when it is released."""

    def __init__(
        self,
        settings: KafkaJobsSettings,
        *,
        stop: threading.Event | None = None,
        consumer_factory: Callable[[dict[str, Any]], Any] = Consumer,
        producer_factory: Callable[[dict[str, Any]], Any] = Producer,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        self.ladder = DelayLadder(settings.delay_tiers, settings.queue_prefix)
        self.stop = stop or threading.Event()
        self.clock = clock
        self.windows: dict[tuple[str, int], TierWindow] = {}
        self.forwarded = 0  # messages forwarded since the start (to a tier or a queue)
        self.assigned = threading.Event()  # set once the first assignment arrived (tests, --burst)
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._consumer: Any = None
        self._producer: Any = None
        self._commit_in_flight = False
        self._tier_ms: dict[str, int | None] = {}  # tier topic -> its delay (read from its name once)

    def run(self) -> None:
        """Forward until ``stop`` is set; then commit what was forwarded and leave the group."""
        self.open()
        try:
            while not self.stop.is_set():
                self.step()
        finally:
            self.close()

    def open(self) -> None:
        """Create the consumer and the producer, and subscribe to the tier topics."""
        config = {**consumer_config(self.settings), "group.id": group_id(self.settings), "on_commit": self._on_commit}
        self._consumer = self._consumer_factory(config)
        self._producer = self._producer_factory(producer_config(self.settings))
        self._consumer.subscribe(
            [self.ladder.subscription()], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        logger.info(
            "Delay forwarder started: group %s, tiers %s", group_id(self.settings), ", ".join(self.ladder.topics())
        )

    def step(self) -> None:
        """Poll once, forward what is released, pause or resume partitions, commit."""
        self._poll(self._poll_timeout())
        self._forward_released()
        self._flow_control()
        self._commit(sync=False)

    # Fetching ---------------------------------------------------------------------------------------------

    def _poll_timeout(self) -> float:
        wakes = [wake for window in self.windows.values() if (wake := window.wake_ms()) is not None]
        if not wakes:
            return POLL_TIMEOUT
        return max(0.0, min(POLL_TIMEOUT, (min(wakes) - self.clock()) / 1000))

    def _poll(self, timeout: float) -> None:
        first = self._consumer.poll(timeout)
        if first is None:
            return
        # Accept the first message before consume() can run a rebalance callback that would make it stale.
        self._accept(first)
        for message in self._consumer.consume(BATCH_SIZE - 1, 0):
            self._accept(message)

    def _accept(self, message: Any) -> None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            if error.fatal():
                raise KafkaException(error)
            logger.warning("Delay forwarder consumer error: %s", error.str())
            return
        window = self.windows.get((message.topic(), message.partition()))
        if window is None:
            return
        window.accept(message.offset(), self._waiting(message), self.settings.max_buffered_messages)

    def _waiting(self, message: Any) -> Waiting | None:
        """Read a tier message's delay; a message that cannot be forwarded is logged and skipped (None)."""
        headers = message.headers() or []
        value = message.value()
        try:
            if value is None:
                raise MalformedDelay("it has no value (a tombstone), so it is not a job")
            delay = read_delay(headers)
        except MalformedDelay as exc:
            logger.error(
                "%s/%d@%d cannot be forwarded and is SKIPPED: %s. It was not written by kafka_jobs; the message "
                "stays in the topic at this offset for inspection. key=%r",
                message.topic(),
                message.partition(),
                message.offset(),
                exc,
                message.key(),
            )
            return None
        topic = message.topic()
        tier_ms = self._tier_ms.get(topic, -1)
        if tier_ms == -1:
            tier_ms = self._tier_ms[topic] = self.ladder.delay_of_topic(topic)
        return Waiting(message.offset(), message.key(), value, headers, delay, release_ms(delay, tier_ms))

    # Forwarding -------------------------------------------------------------------------------------------

    def _forward_released(self) -> None:
        now = self.clock()
        batch: list[tuple[TierWindow, Waiting, OutgoingMessage]] = []
        for window in self.windows.values():
            batch.extend((window, waiting, next_hop(waiting, now, self.ladder)) for waiting in window.release(now))
        if not batch:
            return
        results: dict[tuple[str, int, int], KafkaError | str | None] = {}
        for window, waiting, outgoing in batch:
            self._produce(outgoing, (window.topic, window.partition, waiting.offset), results)
        deadline = time.monotonic() + self.settings.delivery_timeout + 5.0
        while len(results) < len(batch) and time.monotonic() < deadline:
            self._producer.flush(0.1)
        retry_at = self.clock() + RETRY_DELAY_MS
        failures: dict[tuple[str, int], tuple[str, KafkaError | str]] = {}
        for window, waiting, outgoing in batch:
            key = (window.topic, window.partition, waiting.offset)
            error = results.get(key, "no acknowledgement in time")
            if error is None:
                window.forwarded(waiting.offset)
                self.forwarded += 1
            else:
                window.failed(waiting.offset, retry_at)
                failures.setdefault((window.topic, window.partition), (outgoing.topic, error))
        for (topic, partition), (destination, error) in failures.items():
            text = error.str() if isinstance(error, KafkaError) else error
            logger.error(
                "Could not forward delayed job(s) from %s/%d to %s: %s. They stay in the tier and are retried in "
                "%.1fs (other tier partitions keep flowing).",
                topic,
                partition,
                destination,
                text,
                RETRY_DELAY_MS / 1000,
            )

    def _produce(
        self, outgoing: OutgoingMessage, key: tuple[str, int, int], results: dict[tuple[str, int, int], Any]
    ) -> None:
        def delivered(err: KafkaError | None, _msg: Any) -> None:
            results[key] = err

        kwargs: dict[str, Any] = {"key": outgoing.key, "headers": outgoing.headers, "on_delivery": delivered}
        if outgoing.partition is not None:
            kwargs["partition"] = outgoing.partition
        while True:
            try:
                self._producer.produce(outgoing.topic, outgoing.value, **kwargs)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
            except KafkaException as exc:
                results[key] = str(exc)
                return

    # Flow control and commits -----------------------------------------------------------------------------

    def _flow_control(self) -> None:
        """Pause a partition whose window filled up; resume it (at the first message not held) at half."""
        limit = self.settings.max_buffered_messages
        for window in self.windows.values():
            tp = TopicPartition(window.topic, window.partition)
            if window.seek_needed and not window.paused and window.next_offset is not None:
                if window.gap_reported != window.next_offset:  # read again until GAP_CONFIRM: said once
                    window.gap_reported = window.next_offset
                    logger.warning(
                        "%s/%d: offset gap after %d; reading the partition again from there",
                        tp.topic,
                        tp.partition,
                        window.next_offset,
                    )
                if self._seek(window):
                    window.seek_needed = False
            if window.paused and not window.paused_in_consumer:
                self._consumer.pause([tp])
                window.paused_in_consumer = True
            elif window.paused and len(window) <= limit // 2:
                self._consumer.resume([tp])
                window.paused = window.paused_in_consumer = False
                if window.next_offset is not None and self._seek(window):
                    window.seek_needed = False
                elif window.next_offset is not None:  # resuming without the seek could skip messages: try later
                    self._consumer.pause([tp])
                    window.paused = window.paused_in_consumer = True

    def _seek(self, window: TierWindow) -> bool:
        """Read the window's partition again from ``next_offset``; False if the client refused (try later)."""
        assert window.next_offset is not None
        try:
            self._consumer.seek(TopicPartition(window.topic, window.partition, window.next_offset))
        except KafkaException as exc:
            logger.warning("Could not seek %s/%d (%s); retrying", window.topic, window.partition, exc)
            return False
        return True

    def _commit(self, *, sync: bool, windows: list[TierWindow] | None = None) -> None:
        if self._commit_in_flight and not sync:
            return
        offsets = []
        for window in windows if windows is not None else list(self.windows.values()):
            point = window.commit_point()
            if point is not None and (sync or point != window.committed) and not window.revoked:
                offsets.append(TopicPartition(window.topic, window.partition, point))
                window.committed = point
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not sync)
            self._commit_in_flight = not sync
        except KafkaException as exc:
            if exc.args and isinstance(exc.args[0], KafkaError) and exc.args[0].code() == KafkaError._NO_OFFSET:
                return
            logger.warning("Delay forwarder commit failed: %s (forwarded jobs may be forwarded again)", exc)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self._commit_in_flight = False
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            logger.warning("Delay forwarder commit failed: %s (forwarded jobs may be forwarded again)", err.str())
            for tp in partitions:  # send it again with the next commit
                window = self.windows.get((tp.topic, tp.partition))
                if window is not None:
                    window.committed = None

    # Rebalance callbacks (inside poll, on this thread: no forward is in progress) -----------------------------

    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.windows[(tp.topic, tp.partition)] = TierWindow(tp.topic, tp.partition)
        self.assigned.set()
        if partitions:
            logger.info("Delay forwarder assigned %s", _tp_text(partitions))

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        windows = [w for tp in partitions if (w := self.windows.get((tp.topic, tp.partition))) is not None]
        self._commit(sync=True, windows=windows)
        self._forget(partitions)

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)
        logger.warning("Delay forwarder lost %s (no commit: its jobs may be forwarded again)", _tp_text(partitions))

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            window = self.windows.pop((tp.topic, tp.partition), None)
            if window is not None:
                window.revoked = True

    def close(self) -> None:
        """Commit what was forwarded, leave the group, flush the producer."""
        try:
            if self._consumer is not None:
                self._commit(sync=True)
                self._consumer.close()
        finally:
            if self._producer is not None:
                left = self._producer.flush(self.settings.delivery_timeout)
                if left:
                    logger.error("%d forwarded message(s) were unacknowledged at exit: they are forwarded again", left)
        logger.info("Delay forwarder stopped; %d message(s) forwarded", self.forwarded)


def _tp_text(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}" for tp in partitions) or "none"
