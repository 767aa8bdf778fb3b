"""The poll thread's work with the consumer: fetch messages into lanes, pause and resume partitions, rebalances.

The poll loop never runs a job, so a long job cannot make the consumer miss ``max.poll.interval.ms``.
Every consumer call happens on this thread (rebalance and commit callbacks run inside ``poll``), never
while holding the ledger's lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ..conf import KafkaJobsSettings
from ..routing import Route
from ..serializer import Envelope, get_serializer
from .committer import Committer
from .consumer import JobConsumer
from .ledger import Ledger
from .partition import PartitionState

logger = logging.getLogger("kafka_jobs.worker")

BATCH_SIZE = 500
POLL_TIMEOUT = 0.25
# While jobs run, poll at least this often, so a finished job is committed within about this long.
BUSY_POLL_TIMEOUT = 0.01
# While a partition is paused with a full buffer, poll briefly so it resumes as soon as its jobs drain it.
PAUSED_POLL_TIMEOUT = 0.02
# A full partition none of whose jobs finishes for this long is paused, so the others are fetched meanwhile;
# while its jobs progress it is not (the poll thread waits for room instead of fetching).
FULL_WAIT = 0.1
# A full partition that runs less than half a buffer of jobs in this long is paused although its jobs
# progress: librdkafka's read-ahead of it (up to a buffer more) sits in front of the other partitions'
# messages, which would wait for all those slow jobs. Half a buffer of such jobs outlasts the refetch.
FULL_MAX = 0.5

# The lane key of a message whose envelope or virtual partition key could not be computed: a lane of its own.
SEPARATE_LANE = -1


def _tp_text(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}" for tp in partitions) or "none"


class Listener:
    """Feeds the ledger from the consumer and follows the group's rebalances."""

    def __init__(
        self,
        consumer: JobConsumer,
        ledger: Ledger,
        committer: Committer,
        settings: KafkaJobsSettings,
        routes: dict[str, Route],
        on_forget: Callable[[list[tuple[str, int]]], None] | None = None,
    ) -> None:
        self.consumer = consumer
        # Called with the (topic, partition) pairs this worker no longer owns, after the ledger forgot them.
        self.on_forget = on_forget
        self.ledger = ledger
        self.committer = committer
        self.settings = settings
        self.routes = routes
        self.virtual = any(route.virtual_partitions is not None for route in routes.values())
        self.serializer = get_serializer()
        self.abandon_running = False  # after the shutdown timeout, revocation does not wait for jobs again

    def subscribe(self) -> None:
        """Join the group on the routed topics."""
        self.consumer.subscribe(
            list(self.routes), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    # Fetching --------------------------------------------------------------------------------------------

    def poll(self) -> None:
        """Wait for messages (see ``poll_timeout``) and buffer what was fetched in the partitions' lanes.

        At most as many messages are fetched as the fullest partition not paused has room for, so none
        is refused. While one is full, the poll thread waits for its jobs to drain it to half instead of
        pausing it: resuming a paused partition waits for the fetch request in flight at the broker (up to
        ``fetch.wait.max.ms``), which would stall a partition whose jobs are quick. A full partition none
        of whose jobs finished for ``FULL_WAIT``, or that ran less than half a buffer in ``FULL_MAX``, is
        paused by ``flow_control``.
        """
        timeout = self.poll_timeout()
        room = self._room()
        if room == 0:
            self.ledger.wait_for_room(min(timeout, FULL_WAIT) if timeout > 0 else 0.0)
            return
        first = self.consumer.poll(timeout)
        if first is None:
            return
        # Accept the first message before consume() can run a rebalance callback that would make it stale.
        self._accept_all([first])
        room = self._room()  # again: poll() may have assigned partitions, and the first message took a place
        if room > 0:
            self._accept_all(self.consumer.consume(min(room, BATCH_SIZE - 1), 0))

    def _room(self) -> int:
        """Return how many messages may be fetched now: the least room of the partitions not paused."""
        limit = self.ledger.max_buffered
        with self.ledger.cond:
            return min(
                (limit - state.buffered for state in self.ledger.partitions.values() if not state.paused),
                default=BATCH_SIZE,
            )

    def poll_timeout(self) -> float:
        """How long the next poll may wait: shorter while jobs run, a lane waits to retry or a buffer drains."""
        ledger = self.ledger
        with ledger.cond:
            # Also right after a job finished that the committer has not looked at yet.
            busy = ledger.running or ledger.ready or ledger.completed != self.committer.seen_completed
            timeout = BUSY_POLL_TIMEOUT if busy else POLL_TIMEOUT
            for state in ledger.partitions.values():
                for lane in state:
                    if lane.retry_at is not None:
                        timeout = min(timeout, lane.retry_at - time.monotonic())
                if state.paused and not state.backing_off:
                    timeout = min(timeout, PAUSED_POLL_TIMEOUT)
        return max(0.0, timeout)

    def _accept_all(self, messages: list[Any]) -> None:
        # Virtual partitions need the envelope for the lane key: decoded here, outside the lock, and handed to
        # the executor with the message so it is not decoded twice.
        lanes = [self._lane_of(message) for message in messages] if self.virtual else None
        ledger = self.ledger
        with ledger.cond:
            for i, message in enumerate(messages):
                key, envelope = lanes[i] if lanes is not None else (None, None)
                self._accept(message, key, envelope)
            ledger.wake_threads()

    def _accept(self, message: Any, key: object, envelope: Envelope | None) -> None:
        """Buffer one fetched message in its lane (under the ledger's lock)."""
        ledger = self.ledger
        error = message.error()
        state = ledger.partitions.get((message.topic(), message.partition()))
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                if state is not None:
                    state.eof_offset = message.offset()
                return
            if error.fatal():
                raise KafkaException(error)
            logger.warning("Consumer error: %s", error.str())
            return
        if state is None or ledger.stopping:
            return
        if state.accept(message.offset(), ledger.max_buffered):
            ledger.add(state, key, (message, envelope))

    def _lane_of(self, message: Any) -> tuple[object, Envelope | None]:
        """Return the lane key of a message and its envelope if decoded (virtual partitions only)."""
        route = self.routes.get(message.topic()) if message.error() is None else None
        vp = route.virtual_partitions if route is not None else None
        if vp is None:
            return None, None
        try:
            envelope = self.serializer.loads(message.value())
        except Exception:  # an undecodable message gets its own lane; the executor reports it
            return SEPARATE_LANE, None
        try:
            return hash(vp.key(envelope)) % vp.max_lanes, envelope
        except Exception as exc:  # a bug in the key function (or an unhashable key) must not stop the worker
            logger.warning(
                "%s/%d@%d: the virtual_partitions key of route %r failed (%r); the job runs in a separate lane",
                message.topic(),
                message.partition(),
                message.offset(),
                route.queue if route is not None else "?",
                exc,
                exc_info=exc,
            )
            return SEPARATE_LANE, envelope

    # Flow control ----------------------------------------------------------------------------------------

    def flow_control(self) -> None:
        """Pause partitions whose buffer is full, whose job waits to retry or whose queue an operator paused;
        resume them when none of these holds any more.

        A paused partition refuses fetched messages; it is resumed with a seek to the first one it refused.
        """
        limit = self.ledger.max_buffered
        now = time.monotonic()
        half = self.ledger.room_level
        with self.ledger.cond:
            changes = []
            gaps = [s for s in self.ledger.partitions.values() if s.seek_needed and not s.paused]
            for state in self.ledger.partitions.values():
                buffered = state.buffered
                if buffered < limit:
                    state.full_since = None
                elif state.full_since is None or state.finished != state.finished_seen:
                    state.full_since, state.finished_seen = now, state.finished  # full, but its jobs progress
                stuck = state.full_since is not None and now - state.full_since >= FULL_WAIT
                self._measure_drain(state, buffered, now)
                backing_off = state.backing_off and state.route.virtual_partitions is None
                hold = state.held or stuck or state.crowding or backing_off
                if hold:
                    state.paused = True
                if state.paused and not state.paused_in_consumer:
                    state.paused_in_consumer = True
                    changes.append((state, True))
                elif state.paused and not hold and buffered <= half:
                    state.paused = state.paused_in_consumer = False
                    changes.append((state, False))
        for state in gaps:
            self._read_again(state)
        for state, pause in changes:
            if pause:
                self.consumer.pause([TopicPartition(state.topic, state.partition)])
                logger.debug("Paused %s/%d: %d message(s) buffered", state.topic, state.partition, state.buffered)
            else:
                self._resume(state)

    def _measure_drain(self, state: PartitionState, buffered: int, now: float) -> None:
        """Mark a partition ``crowding`` while it stays above half full and runs under half a buffer per FULL_MAX."""
        half = self.ledger.room_level
        if buffered <= half:
            state.drain_window = None
            state.crowding = False
        elif state.drain_window is None:
            if buffered >= self.ledger.max_buffered:
                state.drain_window = (now, state.finished)
        elif now - state.drain_window[0] >= FULL_MAX:
            ran = state.finished - state.drain_window[1]
            if ran < self.ledger.max_buffered - half and not state.paused:
                state.crowding = True
            state.drain_window = (now, state.finished)

    def _read_again(self, state: PartitionState) -> None:
        """Seek back to ``next_offset`` after a gap in the offsets fetched (see ``PartitionState.accept``)."""
        offset = state.next_offset
        if offset is None:  # a gap is only seen after an accepted message
            return
        gap = state.gaps.offset
        if gap != state.gap_reported:  # read again until the gap is confirmed: said once
            state.gap_reported = gap
            # INFO: transaction markers and compaction leave real gaps, on a healthy cluster; a read again
            # at least GAP_CONFIRM later that still starts after the gap passes it.
            logger.info(
                "%s/%d: offset %d came before %d (a gap in the offsets fetched); reading the partition again from %d",
                state.topic,
                state.partition,
                gap,
                offset,
                offset,
            )
        try:
            self.consumer.seek(TopicPartition(state.topic, state.partition, offset))
        except KafkaException as exc:  # still refusing: the next turn tries again
            logger.warning("Could not seek %s/%d (%s); retrying", state.topic, state.partition, exc)
            return
        with self.ledger.cond:
            state.seek_needed = False

    def _resume(self, state: PartitionState) -> None:
        tp = TopicPartition(state.topic, state.partition)
        self.consumer.resume([tp])
        if state.next_offset is not None:
            try:
                self.consumer.seek(TopicPartition(state.topic, state.partition, state.next_offset))
            except KafkaException as exc:  # resuming without the seek could skip messages: try later
                logger.warning("Could not seek %s/%d on resume (%s); retrying", state.topic, state.partition, exc)
                self.consumer.pause([tp])
                with self.ledger.cond:
                    state.paused = state.paused_in_consumer = True
                return
            with self.ledger.cond:
                state.seek_needed = False  # read again from next_offset
        logger.debug(
            "Resumed %s/%d at offset %s: %d message(s) buffered",
            state.topic,
            state.partition,
            state.next_offset,
            state.buffered,
        )

    # Rebalance callbacks (run inside poll, on the poll thread) ----------------------------------------------

    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        states = [PartitionState(tp.topic, tp.partition, self.routes[tp.topic]) for tp in partitions]
        self.committer.restore(states)  # before any of their messages is accepted
        self.ledger.assign(states)
        logger.info("Assigned partitions: %s", _tp_text(partitions))

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        """Drop jobs not started; give running ones REVOKE_TIMEOUT to finish; commit; forget the partitions."""
        states = self.ledger.take_back(partitions)
        abandoned = self.ledger.wait_idle(states, 0.0 if self.abandon_running else self.settings.revoke_timeout)
        self.committer.commit_sync(states)
        self._forget(states)
        for state in abandoned:
            logger.warning(
                "%s/%d revoked while a job was still running: its result will not be committed",
                state.topic,
                state.partition,
            )
        logger.info("Revoked partitions: %s", _tp_text(partitions))

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        """Partitions already belong to another member: commit nothing, forget them at once."""
        self._forget(self.ledger.take_back(partitions))
        logger.warning("Lost partitions (no commit): %s", _tp_text(partitions))

    def _forget(self, states: list[PartitionState]) -> None:
        self.ledger.forget(states)
        if self.on_forget is not None:
            self.on_forget([(state.topic, state.partition) for state in states])
