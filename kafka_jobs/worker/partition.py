"""One assigned partition's bookkeeping: lanes of pending messages, retry counts and the commit point.

Pure data and logic, no Kafka calls: the poll thread and the job threads change it under the ledger's lock.
A partition has one lane, or one per virtual key when the route uses virtual partitions. Jobs within a
lane run in order, one at a time; different lanes (and partitions) run in parallel.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Hashable, Iterator
from typing import Any

from ..offsetgap import GapWatch
from ..routing import Route
from ..serializer import Envelope

# A fetched message and its envelope when the poll thread already decoded it (virtual partitions), else None.
Fetched = tuple[Any, Envelope | None]


class OffsetTracker:
    """Offsets received for one partition; the commit point is the lowest one not yet finished."""

    def __init__(self) -> None:
        self._received: collections.deque[int] = collections.deque()
        self._finished: set[int] = set()
        self.position: int | None = None  # next offset to commit (last contiguous finished + 1)

    def add(self, offset: int) -> None:
        """Record a received offset (offsets arrive in increasing order)."""
        self._received.append(offset)

    def finish(self, offset: int) -> None:
        """Record that the job at ``offset`` is done (succeeded, discarded or dead-lettered)."""
        self._finished.add(offset)
        while self._received and self._received[0] in self._finished:
            done = self._received.popleft()
            self._finished.discard(done)
            self.position = done + 1

    def lowest_unfinished(self) -> int | None:
        """Return the lowest received offset whose job is not done, or None."""
        return self._received[0] if self._received else None

    def __len__(self) -> int:
        return len(self._received)


@dataclasses.dataclass(frozen=True)
class CommitPoint:
    """What to commit for a partition: the offset to restart from and the retry counts of failing jobs."""

    offset: int
    failures: dict[int, int]  # offset -> failed runs, for jobs at or after ``offset`` that failed and wait


@dataclasses.dataclass(eq=False)
class Lane:
    """Messages of one partition (or one virtual key) that must run in order."""

    partition: PartitionState
    key: Hashable
    messages: collections.deque[Fetched] = dataclasses.field(default_factory=collections.deque)
    running: bool = False  # a thread owns this lane
    queued: bool = False  # waiting in the ready queue
    retry_at: float | None = None  # monotonic time before which the head message must not run

    def runnable(self, now: float) -> bool:
        """True if a thread may take this lane now."""
        return (
            bool(self.messages)
            and not self.running
            and not self.queued
            and not self.partition.stopping
            and not self.partition.revoked
            and not self.partition.held
            and (self.retry_at is None or self.retry_at <= now)
        )


@dataclasses.dataclass(eq=False)
class PartitionState:
    """One assigned partition."""

    topic: str
    partition: int
    route: Route
    lanes: dict[Hashable, Lane] = dataclasses.field(default_factory=dict)
    tracker: OffsetTracker = dataclasses.field(default_factory=OffsetTracker)
    # Failed runs of each job that has not finished yet, by offset: the executor's attempt number, and
    # committed with the offset so a restart does not count from zero (see kafka_jobs.worker.committer).
    failures: dict[int, int] = dataclasses.field(default_factory=dict)
    next_offset: int | None = None  # offset to fetch after a resume (last accepted + 1)
    paused: bool = False  # refusing messages until resumed with a seek to next_offset
    paused_in_consumer: bool = False  # consumer.pause() was called for it
    # A message came after a gap in the offsets: refuse everything until the partition is read again from
    # next_offset (the listener seeks); it is passed once confirmed (kafka_jobs.offsetgap).
    seek_needed: bool = False
    gaps: GapWatch = dataclasses.field(default_factory=GapWatch)  # kafka_jobs.offsetgap
    gap_reported: int | None = None  # the last gap the listener logged (poll thread only)
    held: bool = False  # its queue is paused by an operator (kafka_jobs.ops): no job starts, nothing is fetched
    # Since when it has been full without a job of it finishing (monotonic), and its finished count then.
    full_since: float | None = None
    finished_seen: int = 0
    finished: int = 0  # jobs of this partition finished (counted by the job threads)
    # Since it last filled up while above half full: (monotonic time, finished then), per FULL_MAX window.
    drain_window: tuple[float, int] | None = None
    crowding: bool = False  # full, and its jobs run under half a buffer per FULL_MAX: paused until half drained
    eof_offset: int | None = None  # end of the partition when the consumer last reported reaching it
    stopping: bool = False  # being revoked: no new jobs start, running ones may still finish and commit
    revoked: bool = False  # no longer owned: nothing is committed or dead-lettered for it
    sent: CommitPoint | None = None  # the last commit point sent to the broker
    running_offsets: set[int] = dataclasses.field(default_factory=set)

    @property
    def buffered(self) -> int:
        """Messages received and not yet finished (a running job's included)."""
        lanes = self.lanes
        if len(lanes) == 1:  # no virtual partitions: read for every fetched message
            for lane in lanes.values():
                return len(lane.messages)
        return sum(len(lane.messages) for lane in lanes.values())

    @property
    def running(self) -> bool:
        """True while a job of this partition runs."""
        return bool(self.running_offsets)

    @property
    def backing_off(self) -> bool:
        """True while any lane waits to retry a failed job."""
        return any(lane.retry_at is not None for lane in self.lanes.values())

    def lane(self, key: Hashable) -> Lane:
        """Return the lane for ``key``, creating it."""
        lane = self.lanes.get(key)
        if lane is None:
            lane = self.lanes[key] = Lane(self, key)
        return lane

    def accept(self, offset: int, limit: int) -> bool:
        """Return True if a message at ``offset`` is new and should be buffered.

        With ``limit`` messages buffered the partition is full: the message is refused and so is every
        later one until the listener resumes the partition with a seek to ``next_offset``, so nothing is
        skipped and the buffer never holds more than ``limit`` messages.

        A message after a gap (its offset beyond ``next_offset``) is refused, and so is every later one
        until the listener has read the partition again from ``next_offset``: the committed offset moves
        past every offset not received, so a skipped message would be lost. A broker may hand out a later
        batch before an earlier one is readable (the embedded Tansu did, under concurrent producers). A
        real gap (transaction markers, compaction) is passed once confirmed (``kafka_jobs.offsetgap``).
        """
        if self.paused or self.revoked or self.seek_needed:
            return False  # refetched after resume (or the seek) from next_offset
        next_offset = self.next_offset
        if next_offset is not None and offset != next_offset:
            if offset < next_offset:
                return False  # already buffered (a fetch raced a seek)
            if not self.gaps.confirmed(offset):
                self.seek_needed = True
                return False
        if self.buffered >= limit:
            self.paused = True
            return False
        self.next_offset = offset + 1
        self.tracker.add(offset)
        return True

    def drop_unstarted(self) -> None:
        """Forget queued messages (revocation or shutdown); running ones stay tracked.

        The dropped offsets stay in the tracker as unfinished, so the commit point never passes a job that
        did not run (with virtual partitions a later offset may still finish after an earlier one is dropped).
        """
        for lane in self.lanes.values():
            lane.messages.clear()

    def drained(self) -> bool:
        """True if every message up to the end last reported by the consumer was buffered and none is left.

        A held partition (its queue paused by an operator) counts as drained: nothing of it may run now.
        """
        if self.held:
            return True
        if self.eof_offset is None or self.paused or self.buffered or self.backing_off:
            return False
        return self.next_offset is None or self.next_offset >= self.eof_offset

    def current_point(self) -> CommitPoint | None:
        """Return what to commit now, or None if no job finished or failed yet."""
        offset = self.tracker.position
        if self.failures:
            # A job that failed before any finished still has its retry count committed, at its own offset.
            offset = offset if offset is not None else self.tracker.lowest_unfinished()
            if offset is not None:
                return CommitPoint(offset, {o: n for o, n in self.failures.items() if o >= offset})
        return CommitPoint(offset, {}) if offset is not None else None

    def commit_point(self) -> CommitPoint | None:
        """Return the commit point if it moved (or its retry counts changed) since the last one sent."""
        sent = self.sent
        if not self.failures and (sent is None or not sent.failures):  # the common case, checked every turn
            position = self.tracker.position
            if position is None or (sent is not None and sent.offset == position):
                return None
            return CommitPoint(position, {})
        point = self.current_point()
        return point if point is not None and point != sent else None

    def __iter__(self) -> Iterator[Lane]:
        return iter(self.lanes.values())
