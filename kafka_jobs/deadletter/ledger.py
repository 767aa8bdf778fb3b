"""The replay ledger of a DLQ topic: which of its messages were replayed, and where each partition's replay
cursor is.

The ledger is a topic of its own, ``<dlq topic>.replays`` (one partition, kept forever), holding one JSON
record per replay command: for each DLQ partition it touched, the new cursor and the offset ranges it
replayed. Folding the records in order gives each DLQ message's state:

- *replayed*: inside a replayed range (whenever it was replayed, forced or not);
- *passed over*: below the cursor but never replayed (an explicit selection went past it);
- *pending*: at or above the cursor.

The ledger grows by one record per replay command, never per message, so reading it is cheap however
large the DLQ is; a page of the DLQ is shown by seeking to it and looking each offset up here. Committed
offsets could not do this: a cursor cannot tell replayed from passed over, and commit metadata (where a
set could live) is dropped by some brokers.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import enum
import json
import os
import socket
from collections.abc import Iterable, Mapping
from typing import Any

LEDGER_SUFFIX = ".replays"
LEDGER_VERSION = 1
# Kept forever: losing the ledger would make every replayed message pending again.
LEDGER_TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


def ledger_topic(dlq_topic: str) -> str:
    """Return the name of the replay ledger topic of ``dlq_topic``."""
    return dlq_topic + LEDGER_SUFFIX


class ReplayState(enum.Enum):
    """Where a DLQ message stands with respect to replay."""

    REPLAYED = "replayed"
    PASSED_OVER = "passed over"
    PENDING = "pending"


@dataclasses.dataclass
class PartitionLedger:
    """The replay state of one DLQ partition: its cursor and its replayed offset ranges."""

    cursor: int = 0
    # Sorted, disjoint, non-adjacent half-open ranges [start, end).
    replayed: list[tuple[int, int]] = dataclasses.field(default_factory=list)

    def state(self, offset: int) -> ReplayState:
        """Return the state of the message at ``offset``."""
        index = bisect.bisect_right(self.replayed, offset, key=lambda r: r[0]) - 1
        if index >= 0 and self.replayed[index][0] <= offset < self.replayed[index][1]:
            return ReplayState.REPLAYED
        return ReplayState.PASSED_OVER if offset < self.cursor else ReplayState.PENDING

    def add(self, cursor: int, ranges: Iterable[tuple[int, int]]) -> None:
        """Apply one ledger entry: the cursor only moves forward; replayed ranges are merged in."""
        self.cursor = max(self.cursor, cursor)
        merged: list[tuple[int, int]] = []
        for start, end in sorted([*self.replayed, *ranges]):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self.replayed = merged


def ranges_of(offsets: Iterable[int]) -> list[tuple[int, int]]:
    """Return the half-open ranges covering ``offsets`` (consecutive offsets share one range)."""
    ranges: list[tuple[int, int]] = []
    for offset in sorted(set(offsets)):
        if ranges and ranges[-1][1] == offset:
            ranges[-1] = (ranges[-1][0], offset + 1)
        else:
            ranges.append((offset, offset + 1))
    return ranges


class Ledger:
    """The folded replay ledger of one DLQ topic."""

    def __init__(self) -> None:
        self.partitions: dict[int, PartitionLedger] = {}
        self.entries = 0

    def partition(self, partition: int) -> PartitionLedger:
        """Return the ledger of ``partition`` (empty if nothing was replayed there)."""
        return self.partitions.get(partition) or PartitionLedger()

    def state(self, partition: int, offset: int) -> ReplayState:
        """Return the state of the DLQ message at ``partition``/``offset``."""
        return self.partition(partition).state(offset)

    def cursors(self, partitions: Iterable[int]) -> dict[int, int]:
        """Return the replay cursor of each of ``partitions`` (0 where nothing was replayed)."""
        return {p: self.partition(p).cursor for p in partitions}

    def apply(self, record: Any) -> None:
        """Fold one ledger record in; a record this release cannot read is ignored (never guessed at)."""
        if not isinstance(record, dict) or record.get("v") != LEDGER_VERSION:
            return
        partitions = record.get("partitions")
        if not isinstance(partitions, dict):
            return
        for key, entry in partitions.items():
            try:
                partition, cursor = int(key), int(entry["cursor"])
                ranges = [(int(start), int(end)) for start, end in entry["replayed"]]
            except (KeyError, TypeError, ValueError):
                continue
            self.partitions.setdefault(partition, PartitionLedger()).add(cursor, ranges)
        self.entries += 1

    @classmethod
    def fold(cls, values: Iterable[bytes | None]) -> Ledger:
        """Build the ledger from the values of its records, oldest first."""
        ledger = cls()
        for value in values:
            try:
                ledger.apply(json.loads(value or b""))
            except (ValueError, RecursionError):  # not ours, or damaged: skipped like an unknown version
                continue
        return ledger


def ledger_record(cursors: Mapping[int, int], replayed: Mapping[int, Iterable[int]], *, forced: bool) -> bytes:
    """Return the ledger record of one replay: new cursors and replayed offsets per DLQ partition."""
    partitions = {
        str(p): {"cursor": cursor, "replayed": [list(r) for r in ranges_of(replayed.get(p, ()))]}
        for p, cursor in sorted(cursors.items())
    }
    record = {
        "v": LEDGER_VERSION,
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "by": f"{socket.gethostname()}:{os.getpid()}",
        "forced": forced,
        "partitions": partitions,
    }
    return json.dumps(record, separators=(",", ":")).encode()
