"""How much work each section does: the default run, and ``--quick``."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Message counts and durations of one run."""

    enqueue: int = 50_000  # perform_later with produce_async, and perform_all_later (in batches)
    enqueue_sync: int = 1_000  # perform_later with produce_sync (one acknowledgement each)
    batch: int = 1_000  # jobs per perform_all_later call
    processing: int = 100_000  # no-op jobs each burst worker runs
    partitions: tuple[int, ...] = (1, 6)
    concurrency: tuple[int, ...] = (1, 4)
    latency_rate: float = 200.0  # jobs per second
    latency_seconds: float = 10.0
    backlog: int = 1_000_000  # jobs waiting while the memory worker runs
    small_backlog: int = 10_000  # the comparison backlog; both memory workers run this many jobs


QUICK = Sizes(enqueue=10_000, enqueue_sync=300, processing=20_000, latency_seconds=5.0, backlog=200_000)
