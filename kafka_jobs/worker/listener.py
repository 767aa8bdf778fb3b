"""The worker's main thread: polls Kafka, feeds lanes to job threads, pauses, resumes and commits.

The poll loop never runs a job, so a long job cannot make the consumer miss ``max.poll.interval.ms``.
Every consumer call happens on this thread (rebalance callbacks run inside ``poll``). Job threads
only change the shared state under ``self.cond``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ..conf import KafkaJobsSettings, client_config
from ..routing import Route
from ..serializer import get_serializer
from .executor import Executor, Verdict
from .shutdown import ExitCode, Shutdown
from .state import Lane, PartitionState

logger = logging.getLogger("kafka_jobs.worker")

BATCH_SIZE = 500
POLL_TIMEOUT = 0.25
# While a partition is paused with a full buffer, poll briefly so it resumes as soon as its jobs drain it.
PAUSED_POLL_TIMEOUT = 0.02


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
        # do not wait the default second before fetching again (its documentation recommends lowering it).
        "queued.min.messages": settings.max_buffered_messages,
        "fetch.queue.backoff.ms": 100,
        **settings.consumer,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
    }


def _tp_text(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}" for tp in partitions) or "none"


class Worker:
    """Consume the given routes and run their jobs until asked to stop; ``run()`` returns the exit code."""

    def __init__(
        self,
        settings: KafkaJobsSettings,
        routes: list[Route],
        *,
        concurrency: int | None = None,
        max_jobs: int | None = None,
        burst: bool = False,
        shutdown: Shutdown | None = None,
    ) -> None:
        self.settings = settings
        self.routes = {route.topic: route for route in routes}
        self.concurrency = concurrency or settings.concurrency
        self.max_jobs = max_jobs
        self.burst = burst
        self.shutdown = shutdown or Shutdown()
        self.executor = Executor(settings)
        self.cond = threading.Condition()
        self.states: dict[tuple[str, int], PartitionState] = {}
        self.ready: collections.deque[Lane] = collections.deque()
        self.stopping = False  # no new jobs start (set under cond)
        self.closed = False  # job threads exit
        self.assigned_once = False
        self.completed = 0
        self.running = 0
        self.peak_buffered = 0  # the most messages one partition held at once (bounded by max_buffered_messages)
        self.abandon_running = False  # after the shutdown timeout, revocation does not wait for jobs again
        self.last_commit = 0.0
        self.consumer: Consumer | None = None

    # Main thread ------------------------------------------------------------------------------------------

    def run(self) -> ExitCode:
        """Join the group, process jobs until stopped, then shut down gracefully."""
        self.consumer = Consumer({**consumer_config(self.settings), "on_commit": self._on_commit})
        self.consumer.subscribe(
            list(self.routes), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        logger.info(
            "Worker started: group %s, topics %s, %d thread(s)",
            self.settings.group_id,
            ", ".join(self.routes),
            self.concurrency,
        )
        threads = [
            threading.Thread(target=self._job_thread, name=f"kafka-jobs-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            while not self.shutdown.check():  # a received signal becomes a stop request here
                self._poll()
                self._schedule_due()
                self._flow_control()
                self._commit(sync=False)
                self._check_done()
            return self._stop()
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def _poll(self) -> None:
        assert self.consumer is not None
        first = self.consumer.poll(self._poll_timeout())
        if first is None:
            return
        # Accept the first message before consume() can run a rebalance callback that would make it stale.
        with self.cond:
            self._accept(first)
        batch = self.consumer.consume(BATCH_SIZE - 1, 0)
        with self.cond:
            for message in batch:
                self._accept(message)
            self.cond.notify_all()

    def _poll_timeout(self) -> float:
        timeout = POLL_TIMEOUT
        with self.cond:
            for state in self.states.values():
                for lane in state:
                    if lane.retry_at is not None:
                        timeout = min(timeout, lane.retry_at - time.monotonic())
                if state.paused and not state.backing_off:
                    timeout = min(timeout, PAUSED_POLL_TIMEOUT)
        return max(0.0, timeout)

    def _accept(self, message: Any) -> None:
        """Buffer one fetched message in its lane (called under cond)."""
        error = message.error()
        state = self.states.get((message.topic(), message.partition()))
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                if state is not None:
                    state.eof_offset = message.offset()
                return
            if error.fatal():
                raise KafkaException(error)
            logger.warning("Consumer error: %s", error.str())
            return
        if state is None or self.stopping:
            return
        if not state.accept(message.offset(), self.settings.max_buffered_messages):
            return
        lane = state.lane(self._lane_key(state.route, message))
        lane.messages.append(message)
        self.peak_buffered = max(self.peak_buffered, state.buffered)
        self._make_ready(lane)

    def _lane_key(self, route: Route, message: Any) -> Any:
        vp = route.virtual_partitions
        if vp is None:
            return None
        try:
            envelope = get_serializer().loads(message.value())
        except Exception:  # an undecodable message gets its own lane; the executor reports it
            return -1
        try:
            return hash(vp.key(envelope)) % vp.max_lanes
        except Exception as exc:  # a bug in the key function (or an unhashable key) must not stop the worker
            logger.warning(
                "%s/%d@%d: the virtual_partitions key of route %r failed (%r); the job runs in a separate lane",
                message.topic(),
                message.partition(),
                message.offset(),
                route.queue,
                exc,
                exc_info=exc,
            )
            return -1

    def _make_ready(self, lane: Lane) -> None:
        if not self.stopping and lane.runnable(time.monotonic()):
            lane.queued = True
            self.ready.append(lane)

    def _schedule_due(self) -> None:
        """Queue lanes whose retry is due, and idle lanes with work a thread gave back (e.g. at --max-jobs)."""
        now = time.monotonic()
        with self.cond:
            for state in self.states.values():
                for lane in state:
                    if lane.retry_at is not None and lane.retry_at <= now and not lane.running:
                        lane.retry_at = None
                    self._make_ready(lane)
            if self.ready:
                self.cond.notify_all()

    def _flow_control(self) -> None:
        """Pause partitions whose buffer is full or whose job waits to retry; resume them when drained.

        A paused partition refuses fetched messages; it is resumed with a seek to the first one it refused.
        """
        assert self.consumer is not None
        limit = self.settings.max_buffered_messages
        with self.cond:
            changes = []
            for state in self.states.values():
                hold = state.buffered >= limit or (state.backing_off and state.route.virtual_partitions is None)
                if hold:
                    state.paused = True
                if state.paused and not state.paused_in_consumer:
                    state.paused_in_consumer = True
                    changes.append((state, True))
                elif state.paused and not hold and state.buffered <= limit // 2:
                    state.paused = state.paused_in_consumer = False
                    changes.append((state, False))
        for state, pause in changes:
            tp = TopicPartition(state.topic, state.partition)
            if pause:
                self.consumer.pause([tp])
                logger.debug("Paused %s/%d: %d message(s) buffered", state.topic, state.partition, state.buffered)
                continue
            self.consumer.resume([tp])
            if state.next_offset is not None:
                try:
                    self.consumer.seek(TopicPartition(state.topic, state.partition, state.next_offset))
                except KafkaException as exc:  # resuming without the seek could skip messages: try later
                    logger.warning("Could not seek %s/%d on resume (%s); retrying", state.topic, state.partition, exc)
                    self.consumer.pause([tp])
                    with self.cond:
                        state.paused = state.paused_in_consumer = True
                    continue
            logger.debug(
                "Resumed %s/%d at offset %s: %d message(s) buffered",
                state.topic,
                state.partition,
                state.next_offset,
                state.buffered,
            )

    def _commit(self, *, sync: bool, states: Iterable[PartitionState] | None = None) -> None:
        """Commit the offset below which every job of a partition has finished.

        A sync commit (revocation, shutdown) sends every known position again, in case an earlier
        asynchronous commit failed.
        """
        assert self.consumer is not None
        now = time.monotonic()
        if not sync and now - self.last_commit < self.settings.commit_interval:
            return
        self.last_commit = now
        with self.cond:
            pending = []
            for state in states if states is not None else self.states.values():
                point = state.tracker.position if sync else state.commit_point()
                if point is not None and not state.revoked:
                    pending.append((state, point))
        if not pending:
            return
        offsets = [TopicPartition(s.topic, s.partition, point) for s, point in pending]
        try:
            if sync:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            else:
                self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            logger.error("Commit of %s failed: %s (jobs since the last commit may run again)", _tp_text(offsets), exc)
            return
        with self.cond:
            for state, point in pending:
                state.committed = point

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            logger.error("Commit of %s failed: %s", _tp_text(partitions), err.str())

    def _check_done(self) -> None:
        with self.cond:
            if self.max_jobs is not None and self.completed >= self.max_jobs:
                reason = f"--max-jobs {self.max_jobs} reached"
            elif self.burst and self._idle():
                reason = "--burst: no more jobs"
            else:
                return
        self.shutdown.request(reason)

    def _idle(self) -> bool:
        return (
            self.assigned_once
            and not self.ready
            and self.running == 0
            and all(state.drained() for state in self.states.values())
        )

    # Rebalance callbacks (run inside poll, on the main thread) ----------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with self.cond:
            self.assigned_once = True
            for tp in partitions:
                self.states[(tp.topic, tp.partition)] = PartitionState(tp.topic, tp.partition, self.routes[tp.topic])
        logger.info("Assigned partitions: %s", _tp_text(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Drop jobs not started; give running ones REVOKE_TIMEOUT to finish; commit; forget the partitions."""
        states = self._take_back(partitions)
        deadline = time.monotonic() + (0.0 if self.abandon_running else self.settings.revoke_timeout)
        with self.cond:
            while any(s.running for s in states) and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            abandoned = [s for s in states if s.running]
        self._commit(sync=True, states=states)
        self._forget(states)
        for state in abandoned:
            logger.warning(
                "%s/%d revoked while a job was still running: its result will not be committed",
                state.topic,
                state.partition,
            )
        logger.info("Revoked partitions: %s", _tp_text(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions already belong to another member: commit nothing, forget them at once."""
        self._forget(self._take_back(partitions))
        logger.warning("Lost partitions (no commit): %s", _tp_text(partitions))

    def _take_back(self, partitions: list[TopicPartition]) -> list[PartitionState]:
        with self.cond:
            states = [s for tp in partitions if (s := self.states.get((tp.topic, tp.partition))) is not None]
            for state in states:
                state.stopping = True
                state.drop_unstarted()
        return states

    def _forget(self, states: list[PartitionState]) -> None:
        with self.cond:
            for state in states:
                state.revoked = True
                key = (state.topic, state.partition)
                if self.states.get(key) is state:
                    del self.states[key]

    # Shutdown --------------------------------------------------------------------------------------------

    def _stop(self) -> ExitCode:
        """Stop starting jobs, wait for running ones (bounded), commit, leave the group."""
        assert self.consumer is not None
        with self.cond:
            self.stopping = True
            self.ready.clear()
            for state in self.states.values():
                state.drop_unstarted()
            running = self.running
        if running:
            logger.info("Waiting up to %.0fs for %d running job(s) to finish", self.settings.shutdown_timeout, running)
        deadline = time.monotonic() + self.settings.shutdown_timeout
        with contextlib.suppress(KafkaException):
            self.consumer.pause(self.consumer.assignment())
        while self.running and time.monotonic() < deadline:
            self.consumer.poll(0.1)  # keeps the membership alive; fetched messages are ignored while stopping
        timed_out = self.running > 0
        self.abandon_running = timed_out
        self._commit(sync=True)
        self.consumer.close()
        if timed_out:
            logger.error("Shutdown timeout: %d job(s) still running were not marked and will run again", self.running)
            # A crash or a critical job error says more about why than the timeout it led to.
            return self.shutdown.exit_code if self.shutdown.exit_code is not ExitCode.OK else ExitCode.SHUTDOWN_TIMEOUT
        logger.info(
            "Worker stopped (%s); %d job(s) completed; at most %d message(s) buffered per partition (limit %d)",
            self.shutdown.reason,
            self.completed,
            self.peak_buffered,
            self.settings.max_buffered_messages,
        )
        return self.shutdown.exit_code

    # Job threads -----------------------------------------------------------------------------------------

    def _job_thread(self) -> None:
        try:
            while True:
                with self.cond:
                    while not self.ready and not self.closed:
                        self.cond.wait()
                    if self.closed:
                        return
                    lane = self.ready.popleft()
                    lane.queued = False
                    lane.running = True
                self._run_lane(lane)
        except BaseException:  # a bug in the worker itself (jobs' errors never get here): stop, don't hang
            logger.critical("Job thread crashed; stopping the worker (unfinished jobs run again)", exc_info=True)
            self.shutdown.request("a job thread crashed", ExitCode.ERROR)

    def _run_lane(self, lane: Lane) -> None:
        """Run a lane's messages in order until it is empty, fails, or another lane is waiting for a thread."""
        state = lane.partition
        while True:
            with self.cond:
                if not self._may_start(lane):
                    lane.running = False
                    self.cond.notify_all()
                    return
                message = lane.messages[0]
                failures = lane.attempts
                state.running_offsets.add(message.offset())
                self.running += 1
            outcome = self.executor.process(message, state.route, failures, lambda: not state.revoked)
            with self.cond:
                self.running -= 1
                state.running_offsets.discard(message.offset())
                if outcome.verdict is Verdict.DONE:
                    if lane.messages and lane.messages[0] is message:
                        lane.messages.popleft()
                    lane.attempts = 0
                    if not state.revoked:
                        state.tracker.finish(message.offset())
                    self.completed += 1
                elif outcome.verdict is Verdict.RETRY:
                    lane.attempts += int(outcome.counts_as_failure)
                    lane.retry_at = time.monotonic() + outcome.delay
                else:
                    self.shutdown.request("a job raised a critical error", ExitCode.CRITICAL_JOB_ERROR)
                    self.stopping = True
                if outcome.verdict is not Verdict.DONE or self.ready:
                    lane.running = False
                    self._make_ready(lane)  # behind the waiting lanes, for fairness (no-op while retrying)
                    self.cond.notify_all()
                    return

    def _may_start(self, lane: Lane) -> bool:
        """True if the lane's head job may start now (called under cond)."""
        if self.stopping or lane.partition.stopping or lane.partition.revoked or not lane.messages:
            return False
        if lane.retry_at is not None:
            return False
        return self.max_jobs is None or self.completed + self.running < self.max_jobs
