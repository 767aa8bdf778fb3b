"""The replay ledger of a DLQ topic: which of its messages were replayed, and which were passed over.

The ledger is a topic of its own, ``<dlq topic>.replays`` (one partition, kept forever), holding one JSON
record per replay command: for each DLQ partition it touched, the offset ranges it replayed and those it
passed over. Folding the records in order gives each DLQ message's state:

- *replayed*: it was replayed (at least once; forced replays are recorded too);
- *passed over*: ``replay --all`` went past it without replaying it (a stub has nothing to replay);
- *pending*: neither; ``replay --all`` replays it.

The ledger grows by one record per replay command, never per message, and consecutive offsets share a
range, so reading it is cheap however large the DLQ is. Each partition's *cursor* is the first offset
from which not everything is dealt with, where ``replay --all`` starts reading; a page of the DLQ is
shown by seeking to it and looking each offset up here. Committed offsets could not do this: one offset
per partition cannot tell replayed from passed over, and commit metadata (where a set could live) is
dropped by some brokers.
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


Ranges = list[tuple[int, int]]  # sorted, disjoint, non-adjacent half-open [start, end)


def _merge(ranges: Iterable[tuple[int, int]]) -> Ranges:
    merged: Ranges = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _covers(ranges: Ranges, offset: int) -> bool:
    index = bisect.bisect_right(ranges, offset, key=lambda r: r[0]) - 1
    return index >= 0 and ranges[index][0] <= offset < ranges[index][1]


@dataclasses.dataclass
class PartitionLedger:
    """The replay state of one DLQ partition: its replayed and passed-over offset ranges."""

    replayed: Ranges = dataclasses.field(default_factory=list)
    passed_over: Ranges = dataclasses.field(default_factory=list)

    def state(self, offset: int) -> ReplayState:
        """Return the state of the message at ``offset``."""
        if _covers(self.replayed, offset):
            return ReplayState.REPLAYED
        return ReplayState.PASSED_OVER if _covers(self.passed_over, offset) else ReplayState.PENDING

    @property
    def cursor(self) -> int:
        """The first offset from which not every message is replayed or passed over."""
        done = _merge([*self.replayed, *self.passed_over])
        return done[0][1] if done and done[0][0] == 0 else 0

    def add(self, replayed: Iterable[tuple[int, int]], passed_over: Iterable[tuple[int, int]]) -> None:
        """Apply one ledger entry."""
        self.replayed = _merge([*self.replayed, *replayed])
        self.passed_over = _merge([*self.passed_over, *passed_over])


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
        """Return where ``replay --all`` starts reading each of ``partitions`` (0 where nothing was done)."""
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
                partition = int(key)
                replayed = [(int(start), int(end)) for start, end in entry.get("replayed", [])]
                passed_over = [(int(start), int(end)) for start, end in entry.get("passed_over", [])]
            except (AttributeError, TypeError, ValueError):
                continue
            self.partitions.setdefault(partition, PartitionLedger()).add(replayed, passed_over)
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


def ledger_record(
    replayed: Mapping[int, Iterable[int]], passed_over: Mapping[int, Iterable[int]], *, forced: bool
) -> bytes:
    """Return the ledger record of one replay: the offsets replayed and passed over, per DLQ partition."""
    partitions = {
        str(p): {
            "replayed": [list(r) for r in ranges_of(replayed.get(p, ()))],
            "passed_over": [list(r) for r in ranges_of(passed_over.get(p, ()))],
        }
        for p in sorted({*replayed, *passed_over})
    }
    record = {
        "v": LEDGER_VERSION,
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "by": f"{socket.gethostname()}:{os.getpid()}",
        "forced": forced,
        "partitions": partitions,
    }
    return json.dumps(record, separators=(",", ":")).encode()
