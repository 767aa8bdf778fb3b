"""Gaps in the offsets a consumer fetched: trusted only when a read again, a while later, still shows them.

The committed offset of a partition moves past every offset not received, so a message the consumer never
got is lost for the group. A gap is normal on Kafka (transaction markers, compaction), but a broker may also
hand out a later batch before an earlier one is readable (the embedded development broker did, under two
producers). So whoever reads a partition refuses what follows a gap and reads the partition again from it;
the gap is passed only when a read at least ``GAP_CONFIRM`` after it was first seen still starts after it.
Used by the worker (``worker.partition``) and the delay forwarder (``delays.window``).
"""

from __future__ import annotations

import time

# Seconds a gap must have been seen before it is taken for a real one: by then a broker that handed out a
# later batch first has made the earlier one readable.
GAP_CONFIRM = 0.5


class GapWatch:
    """The last gap seen in one partition's offsets, and since when."""

    __slots__ = ("offset", "since")

    def __init__(self) -> None:
        self.offset: int | None = None  # the offset that came after the last gap seen
        self.since = 0.0  # when that gap was first seen (monotonic)

    def confirmed(self, offset: int) -> bool:
        """Return True if a gap before ``offset`` has been seen for ``GAP_CONFIRM``: pass it; else read again."""
        now = time.monotonic()
        if self.offset != offset:
            self.offset, self.since = offset, now
        return now - self.since >= GAP_CONFIRM
