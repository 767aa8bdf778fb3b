"""Pages of a dead letter queue, read by offsets from the end: a page never reads more than its window.

A page is the messages of one DLQ partition below an offset (``before``, the end by default), newest first.
Without filters it reads exactly ``size`` messages; with filters (job, error, state) it reads the
``scan_limit`` messages below ``before`` and keeps the newest ``size`` that match, and says where it stopped,
so a filter over a topic of a million messages stays a bounded read and the operator continues from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Protocol

from ..deadletter import DeadLetter, Ledger, ReplayState
from ..deadletter.ledger import Ranges
from ..deadletter.ledger import _merge as merge_ranges

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DEFAULT_SCAN_LIMIT = 5000  # messages read at most to fill one filtered page


class LetterSource(Protocol):
    """What a page needs from a DLQ topic (``kafka_jobs.deadletter.DeadLetterTopic``, or a fake in tests)."""

    topic: str
    partitions: list[int]

    def bounds(self) -> dict[int, tuple[int, int]]: ...

    def ledger(self) -> Ledger: ...

    def letters(
        self, start: dict[int, int], stop: dict[int, int] | None = None, ledger: Ledger | None = None
    ) -> Iterator[DeadLetter]: ...


@dataclasses.dataclass(frozen=True)
class Filters:
    """What to show: job name and error contain these texts (any case); state is one ``ReplayState`` value."""

    job: str = ""
    error: str = ""
    state: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        """Read the filters from a query string; an unknown state shows everything."""
        state = query.get("state", "").strip()
        return cls(
            job=query.get("job", "").strip(),
            error=query.get("error", "").strip(),
            state=state if state in {s.value for s in ReplayState} else "",
        )

    def __bool__(self) -> bool:
        return bool(self.job or self.error or self.state)

    def match(self, letter: DeadLetter) -> bool:
        """Return whether ``letter`` passes every filter."""
        if self.job and self.job.casefold() not in (letter.job_name or "").casefold():
            return False
        if self.error and self.error.casefold() not in letter.error.casefold():
            return False
        return not self.state or letter.state.value == self.state


@dataclasses.dataclass(frozen=True)
class PartitionSummary:
    """One DLQ partition: its offsets and how many of its messages are pending (neither replayed nor passed over)."""

    partition: int
    low: int
    high: int
    pending: int

    @property
    def messages(self) -> int:
        """Messages held (offsets from ``low`` to ``high``; a transaction marker would count as one)."""
        return self.high - self.low


@dataclasses.dataclass(frozen=True)
class LetterPage:
    """One page: ``letters`` newest first, read from offsets ``scanned_from`` to ``before`` of ``partition``."""

    topic: str
    partition: int
    summaries: list[PartitionSummary]
    letters: list[DeadLetter]
    before: int
    scanned_from: int
    size: int
    filters: Filters

    @property
    def summary(self) -> PartitionSummary:
        """The summary of the partition shown."""
        return next(s for s in self.summaries if s.partition == self.partition)

    @property
    def older(self) -> int | None:
        """``before`` of the next older page (None at the start of the partition)."""
        return self.scanned_from if self.scanned_from > self.summary.low else None

    @property
    def newer(self) -> int | None:
        """``before`` of the next newer page, without filters (None on the newest page)."""
        if self.before >= self.summary.high:
            return None
        return min(self.before + self.size, self.summary.high)

    @property
    def scanned(self) -> int:
        """How many offsets were read for this page."""
        return self.before - self.scanned_from


def _covered(ranges: Ranges, low: int, high: int) -> int:
    return sum(max(0, min(end, high) - max(start, low)) for start, end in ranges)


def summarize(bounds: dict[int, tuple[int, int]], ledger: Ledger) -> list[PartitionSummary]:
    """Return each partition's offsets and pending count, from the watermarks and the ledger alone."""
    summaries = []
    for partition, (low, high) in sorted(bounds.items()):
        entry = ledger.partition(partition)
        done = _covered(merge_ranges([*entry.replayed, *entry.passed_over]), low, high)
        summaries.append(PartitionSummary(partition, low, high, high - low - done))
    return summaries


def read_page(
    source: LetterSource,
    partition: int,
    *,
    before: int | None = None,
    size: int = DEFAULT_PAGE_SIZE,
    filters: Filters | None = None,
    scan_limit: int = DEFAULT_SCAN_LIMIT,
) -> LetterPage:
    """Read one page of ``partition`` below offset ``before`` (default: its end).

    Raises:
        LookupError: the topic has no such partition.
    """
    if partition not in source.partitions:
        raise LookupError(f"{source.topic!r} has no partition {partition} (it has {len(source.partitions)}).")
    filters = filters or Filters()
    size = max(1, min(size, MAX_PAGE_SIZE))
    bounds = source.bounds()
    ledger = source.ledger()
    low, high = bounds[partition]
    before = high if before is None else max(low, min(before, high))
    letters: list[DeadLetter] = []
    cursor = before
    budget = max(scan_limit, size)
    while cursor > low and len(letters) < size:
        # A read costs about one broker round trip whatever its length (up to thousands of small messages), so a
        # filter reads its whole budget at once rather than window by window.
        chunk = size if not filters else budget - (before - cursor)
        if chunk <= 0:
            break
        start = max(low, cursor - chunk)
        window = list(source.letters({partition: start}, {partition: cursor}, ledger))
        matching = [letter for letter in reversed(window) if filters.match(letter)]
        room = size - len(letters)
        if len(matching) > room:  # the page is full part way through the window: older ones start the next page
            matching = matching[:room]
            start = matching[-1].offset
        letters.extend(matching)
        cursor = start
    return LetterPage(source.topic, partition, summarize(bounds, ledger), letters, before, cursor, size, filters)


def read_letter(source: LetterSource, partition: int, offset: int) -> DeadLetter | None:
    """Return the message at ``partition``/``offset`` with its replay state, or None if there is none."""
    if partition not in source.partitions:
        return None
    ledger = source.ledger()
    for letter in source.letters({partition: offset}, {partition: offset + 1}, ledger):
        if letter.offset == offset:
            return letter
    return None
