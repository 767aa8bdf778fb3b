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
    gap_backlog: int = 20_000  # no-op jobs on one partition, drained through a small buffer (longest gap)
    latency_rate: float = 200.0  # jobs per second
    latency_seconds: float = 10.0
    backlog: int = 1_000_000  # jobs waiting while the memory worker runs
    small_backlog: int = 10_000  # the comparison backlog; both memory workers run this many jobs
    delayed: int = 100_000  # delayed jobs, due uniformly over delay_spread seconds
    delay_spread: float = 60.0  # also how long the immediate stream beside them runs
    tier_backlog: int = 1_000_000  # jobs waiting in a delay tier while the memory worker runs
    tier_small: int = 10_000  # the comparison
    tier_hold_seconds: float = 20.0  # how long each memory worker runs
    processes: int = 2  # --processes: worker processes compared with one (the processes section)
    process_noop: int = 100_000  # no-op jobs each of those workers runs
    cpu_jobs: int = 5_000  # CPU-bound jobs each of those workers runs
    cpu_iterations: int = 20_000  # the work of one CPU-bound job (about 2 ms)
    outbox: int = 20_000  # outbox jobs in transactions of 100 (a tenth of them one per transaction)


QUICK = Sizes(
    enqueue=10_000,
    enqueue_sync=300,
    processing=20_000,
    gap_backlog=5_000,
    latency_seconds=5.0,
    backlog=200_000,
    delayed=10_000,
    delay_spread=20.0,
    tier_backlog=200_000,
    tier_hold_seconds=10.0,
    process_noop=20_000,
    cpu_jobs=1_500,
    outbox=2_000,
)
