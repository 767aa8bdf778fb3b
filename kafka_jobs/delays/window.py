"""The messages of one tier partition the forwarder holds: released by time, committed by offset.

Pure bookkeeping, unit-tested without a broker. A message is released when its time has come (whatever
its place in the partition), and the committed offset only moves past messages that were forwarded (and
acknowledged) or skipped: a crash forwards a message again, it never loses one.
"""

from __future__ import annotations

import collections
import heapq

from ..offsetgap import GapWatch
from .messages import Waiting


class TierWindow:
    """One tier partition's held messages, at most a bounded number (the caller pauses the partition)."""

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.next_offset: int | None = None  # after the last accepted message: where to seek on resume
        self.paused = False  # full: refuses what is still delivered; read again from next_offset on resume
        self.paused_in_consumer = False
        self.seek_needed = False  # a gap in the offsets: read again from next_offset before trusting it
        self.revoked = False
        self.retry_at_ms: int | None = None  # a failed forward waits until then
        self.committed: int | None = None  # the last offset handed to a commit
        self._held: collections.deque[int] = collections.deque()  # every held offset, in offset order
        self._done: set[int] = set()  # forwarded (or skipped) but not yet committed past
        self._waiting: dict[int, Waiting] = {}
        self._releases: list[tuple[int, int]] = []  # heap of (release_ms, offset), not yet handed out
        self._commit_point: int | None = None  # after the last of a contiguous run of forwarded messages
        self._gaps = GapWatch()
        self.gap_reported: int | None = None  # the last gap the forwarder logged

    def __len__(self) -> int:
        return len(self._held)

    def accept(self, offset: int, waiting: Waiting | None, limit: int) -> bool:
        """Hold a fetched message (``None``: one to skip, already reported); False if refused.

        A window holding ``limit`` messages becomes paused: it refuses what is still delivered to it, which
        is read again after the resume. A message before ``next_offset`` is one already held. A message after
        a gap is refused until the partition is read again from ``next_offset``: a message fetched before
        a pause and delivered after the resume must not make the window skip the ones it refused, nor may a
        later batch the broker handed out before an earlier one was readable. A gap still there when read
        again a while after it was first seen is a real one (``kafka_jobs.offsetgap``).
        """
        if self.revoked or self.seek_needed or (self.next_offset is not None and offset < self.next_offset):
            return False
        if self.next_offset is not None and offset > self.next_offset and not self._gaps.confirmed(offset):
            self.seek_needed = True
            return False
        if self.paused or len(self._held) >= limit:
            self.paused = True
            return False
        self.next_offset = offset + 1
        self._held.append(offset)
        if waiting is None:
            self._done.add(offset)
            self._advance()
        else:
            self._waiting[offset] = waiting
            heapq.heappush(self._releases, (waiting.release_ms, offset))
        return True

    def wake_ms(self) -> int | None:
        """Return when the next held message is released (None when nothing waits)."""
        if not self._releases:
            return None
        release = self._releases[0][0]
        return max(release, self.retry_at_ms) if self.retry_at_ms is not None else release

    def release(self, now_ms: int) -> list[Waiting]:
        """Hand out the messages released by ``now_ms``, earliest first; each is out until ``forwarded``/``failed``."""
        if self.retry_at_ms is not None:
            if now_ms < self.retry_at_ms:
                return []
            self.retry_at_ms = None
        released = []
        while self._releases and self._releases[0][0] <= now_ms:
            _, offset = heapq.heappop(self._releases)
            released.append(self._waiting[offset])
        return released

    def forwarded(self, offset: int) -> None:
        """Record that the message at ``offset`` was written to its next topic and acknowledged."""
        if self._waiting.pop(offset, None) is not None:
            self._done.add(offset)
            self._advance()

    def failed(self, offset: int, retry_at_ms: int) -> None:
        """Take back a message whose forward failed; nothing is released again before ``retry_at_ms``."""
        waiting = self._waiting.get(offset)
        if waiting is not None:
            heapq.heappush(self._releases, (waiting.release_ms, offset))
            self.retry_at_ms = max(self.retry_at_ms or 0, retry_at_ms)

    def _advance(self) -> None:
        """Forget the forwarded messages at the head: the commit point moves past them."""
        while self._held and self._held[0] in self._done:
            offset = self._held.popleft()
            self._done.discard(offset)
            self._commit_point = offset + 1

    def commit_point(self) -> int | None:
        """Return the offset to commit: past every message forwarded, up to the first one still held.

        None until a message was forwarded or skipped.
        """
        return self._commit_point

    def idle(self) -> bool:
        """True when nothing is held (everything accepted was forwarded)."""
        return not self._waiting
