"""The state the poll thread and the job threads share, under one lock: partitions, ready lanes, counters.

The poll thread adds fetched messages and makes lanes ready; a job thread takes a ready lane, runs its head
job and records the outcome. Nothing here calls Kafka, so everything the worker knows can be read (or
copied for a status report) by taking ``cond``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable

from confluent_kafka import TopicPartition

from .crew import STALL, Crew, Seat
from .partition import Fetched, Lane, PartitionState


class Ledger:
    """Assigned partitions, lanes waiting for a thread, and job counts; guarded by ``cond``.

    Methods whose docstring says "under cond" expect the caller to hold it; the others take it. Job threads
    park in ``crew`` (a condition each, on the same lock), which decides whether a ready lane needs another
    thread (see ``kafka_jobs.worker.crew``); everything else waits on ``cond``.
    """

    def __init__(self, max_buffered: int, max_jobs: int | None = None) -> None:
        lock = threading.RLock()
        self.cond = threading.Condition(lock)
        self.crew = Crew(lock)
        self.max_buffered = max_buffered
        self.max_jobs = max_jobs
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self.ready: collections.deque[Lane] = collections.deque()
        self.stopping = False  # no new jobs start
        self.closed = False  # job threads exit
        self.assigned_once = False
        self.held_topics: frozenset[str] = frozenset()  # topics of queues paused by an operator
        self.completed = 0
        self.running = 0
        self.peak_buffered = 0  # the most messages one partition held at once (bounded by max_buffered)
        # The poll thread waits for a full partition to drain to this level before it fetches again.
        self.room_level = max_buffered // 2
        self.waiting_for_room = False  # the poll thread waits in wait_for_room(): job threads notify cond

    # Poll thread ------------------------------------------------------------------------------------------

    def add(self, state: PartitionState, key: object, fetched: Fetched) -> None:
        """Buffer an accepted message in the lane for ``key`` (under cond)."""
        lane = state.lane(key)
        lane.messages.append(fetched)
        buffered = state.buffered
        self.peak_buffered = max(self.peak_buffered, buffered)
        if not (lane.running or lane.queued):  # else a thread has it or will: nothing to decide per message
            self.make_ready(lane)

    def make_ready(self, lane: Lane) -> None:
        """Queue ``lane`` for a job thread if it has work it may start now (under cond)."""
        if not self.stopping and lane.runnable(time.monotonic()):
            lane.queued = True
            self.ready.append(lane)

    def schedule_due(self) -> None:
        """Queue lanes whose retry is due, and idle lanes with work a thread gave back (e.g. at --max-jobs)."""
        now = time.monotonic()
        with self.cond:
            for state in self.partitions.values():
                for lane in state:
                    if lane.retry_at is not None and lane.retry_at <= now and not lane.running:
                        lane.retry_at = None
                    self.make_ready(lane)
            self.wake_threads()

    def wake_threads(self) -> None:
        """Wake parked job threads for the ready lanes if no working thread will take them soon (under cond)."""
        if self.ready:
            self.crew.wake(len(self.ready), time.monotonic())

    def wait_for_room(self, timeout: float) -> bool:
        """Wait up to ``timeout`` until the full partitions (not paused) drain to ``room_level``; True if so.

        Job threads notify as soon as a partition drains to that level, so the poll thread fetches again
        within moments of it, without pausing the partition (see ``Listener.poll``).
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            full = [s for s in self.partitions.values() if not s.paused and s.buffered >= self.max_buffered]
            self.waiting_for_room = True
            try:
                while any(not s.paused and not s.revoked and s.buffered > self.room_level for s in full):
                    left = deadline - time.monotonic()
                    if left <= 0 or self.stopping or self.closed:
                        return False
                    self.cond.wait(left)
            finally:
                self.waiting_for_room = False
            return True

    def assign(self, states: Iterable[PartitionState]) -> None:
        """Start tracking newly assigned partitions."""
        with self.cond:
            self.assigned_once = True
            for state in states:
                state.held = state.topic in self.held_topics
                self.partitions[(state.topic, state.partition)] = state

    def hold(self, topics: frozenset[str]) -> None:
        """Hold the partitions of ``topics`` (paused queues) and release the others; the poll thread pauses them."""
        with self.cond:
            self.held_topics = topics
            for state in self.partitions.values():
                state.held = state.topic in topics

    def take_back(self, partitions: Iterable[TopicPartition]) -> list[PartitionState]:
        """Stop starting jobs of ``partitions`` and drop their unstarted ones; return their states."""
        with self.cond:
            states = [s for tp in partitions if (s := self.partitions.get((tp.topic, tp.partition))) is not None]
            for state in states:
                state.stopping = True
                state.drop_unstarted()
        return states

    def wait_idle(self, states: list[PartitionState], timeout: float) -> list[PartitionState]:
        """Wait up to ``timeout`` for the running jobs of ``states``; return those still running."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while any(s.running for s in states) and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(min(left, STALL))
                self.wake_threads()  # the other partitions' lanes, while the poll loop waits here
            return [s for s in states if s.running]

    def forget(self, states: Iterable[PartitionState]) -> None:
        """Stop tracking partitions this worker no longer owns: nothing more is committed for them."""
        with self.cond:
            for state in states:
                state.revoked = True
                key = (state.topic, state.partition)
                if self.partitions.get(key) is state:
                    del self.partitions[key]

    def stop_starting(self) -> int:
        """Start no more jobs and drop the unstarted ones; return how many are still running."""
        with self.cond:
            self.stopping = True
            self.ready.clear()
            for state in self.partitions.values():
                state.drop_unstarted()
            return self.running

    def idle(self) -> bool:
        """True once partitions were assigned and every one is drained with no job left (under cond)."""
        return (
            self.assigned_once
            and not self.ready
            and self.running == 0
            and all(state.drained() for state in self.partitions.values())
        )

    def close(self) -> None:
        """Make the job threads exit."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
            self.crew.close()

    # Job threads ------------------------------------------------------------------------------------------

    def join_crew(self) -> Seat:
        """Give a new job thread its seat in the crew."""
        with self.cond:
            return self.crew.join()

    def leave_crew(self, seat: Seat) -> None:
        """Take an exiting job thread's seat out of the crew."""
        with self.cond:
            self.crew.leave(seat)

    def next_lane(self, seat: Seat) -> Lane | None:
        """Take a ready lane, or park until woken for one; None once closed.

        A thread coming off a lane parks even with lanes ready if another working thread is free to take
        them: quick jobs run on as few threads as keep up (see ``kafka_jobs.worker.crew``).
        """
        with self.cond:
            crew = self.crew
            while not self.closed:
                called = crew.answer(seat)
                if self.ready and (called or not crew.free(time.monotonic(), besides=seat)):
                    lane = self.ready.popleft()
                    lane.queued = False
                    lane.running = True
                    return lane
                crew.park(seat)
            crew.answer(seat)
            return None

    def may_start(self, lane: Lane) -> bool:
        """True if the lane's head job may start now (under cond)."""
        state = lane.partition
        if (
            self.stopping
            or state.stopping
            or state.revoked
            or state.held
            or not lane.messages
            or lane.retry_at is not None
        ):
            return False
        return self.max_jobs is None or self.completed + self.running < self.max_jobs

    def release(self, lane: Lane) -> None:
        """Give a lane back: queued again behind the waiting ones if it has work (under cond)."""
        lane.running = False
        self.make_ready(lane)
        self.wake_threads()
        self.cond.notify_all()
