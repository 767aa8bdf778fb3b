"""(5) Worker peak RSS with a huge backlog vs a small one: the buffer bound (MAX_BUFFERED_MESSAGES).

Both workers run the same number of jobs (``--max-jobs``) so only the backlog differs. The peak is the
highest VmHWM read from /proc/<pid>/status while the worker runs (sampled every 50 ms; VmHWM never drops).
"""

from __future__ import annotations

import time

from kafka_jobs.conf import get_settings

from . import baseline
from .env import Bench, Scenario
from .jobs import NoopJob
from .payload import messages_like, produce_all
from .report import Figure, Report
from .sizes import Sizes

SECTION = "memory"
QUEUE = "noop6"
WORKER_TIMEOUT = 600.0


def _fill(scenario: Scenario, count: int) -> float:
    """Produce ``count`` no-op jobs with the raw producer; return the seconds it took."""
    with scenario.active() as settings:
        messages = messages_like(NoopJob(0), count)
        producer = baseline.connected_producer(settings, next(messages))
        started = time.perf_counter()
        produce_all(producer, messages, timeout=300.0)
        return time.perf_counter() - started


def _peak_rss_mb(bench: Bench, scenario: Scenario, jobs: int) -> tuple[float, int]:
    worker = bench.worker(scenario, QUEUE, "--max-jobs", str(jobs))
    worker.wait(WORKER_TIMEOUT)
    return worker.peak_rss_kb / 1024, worker.stats()["count"]


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """Compare the peak RSS of a worker with a small backlog and one with a huge backlog."""
    small, large = bench.scenario(f"{SECTION}-small"), bench.scenario(f"{SECTION}-large")
    _fill(small, sizes.small_backlog)
    fill_seconds = _fill(large, sizes.backlog)
    small_mb, _ = _peak_rss_mb(bench, small, sizes.small_backlog)
    large_mb, ran = _peak_rss_mb(bench, large, sizes.small_backlog)
    limit = get_settings().max_buffered_messages
    report.add(
        Figure(
            SECTION,
            f"peak RSS, {sizes.backlog:,}-job backlog (6p)",
            large_mb,
            "MiB",
            small_mb,
            f"{sizes.small_backlog:,}-job backlog",
            higher_is_better=False,
            detail={
                "jobs_run": ran,
                "max_buffered_messages": limit,
                "fill_seconds": fill_seconds,
                "fill_rate": sizes.backlog / fill_seconds,
            },
        )
    )
