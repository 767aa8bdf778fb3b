"""(3) Processing rate of burst workers on a backlog of no-op jobs vs a raw consume loop.

Both rates run from the first job (message) to the last, as seen by the probe inside the job: the worker's
interpreter and Django start-up, its group join (about 1 s on Tansu: half the session timeout), its first
fetch, and the burst worker's idle detection and shutdown are outside the window (reported separately).
A worker whose executor is a stub (``bench.stub_worker``) shows what the listener alone costs.
"""

from __future__ import annotations

import statistics
from typing import Any

from . import baseline
from .env import Bench, Scenario
from .jobs import NoopJob
from .payload import messages_like, produce_all
from .report import Figure, Report
from .sizes import Sizes

SECTION = "process"
TARGET = 0.5
WORKER_TIMEOUT = 900.0


def _fill(scenario: Scenario, queue: str, count: int) -> None:
    with scenario.active() as settings:
        messages = messages_like(NoopJob.set(queue=queue).build(0), count)
        producer = baseline.connected_producer(settings, next(messages))
        produce_all(producer, messages)


def _worker(
    bench: Bench, scenario: Scenario, queue: str, concurrency: int, jobs: int, *, stub_executor: bool = False
) -> tuple[float, dict[str, Any]]:
    """Run a burst worker over the backlog; return its rate and the details behind it."""
    arguments = ("--burst", "--concurrency", str(concurrency))
    worker = bench.worker(scenario, queue, *arguments, profiled=not stub_executor, stub_executor=stub_executor)
    worker.wait(WORKER_TIMEOUT)
    stats = worker.stats()
    if stats["count"] < jobs:
        raise RuntimeError(f"worker ran {stats['count']} of {jobs} jobs:\n{worker.log_tail()}")
    assert worker.ended is not None
    spots = worker.hot_spots()
    detail = {
        "jobs": stats["count"],
        "startup_to_first_job_s": stats["first"] - worker.started,
        "last_job_to_exit_s": worker.ended - stats["last"],
        "wall_s": worker.ended - worker.started,
        "peak_rss_kb": worker.peak_rss_kb,
        "profile": str(worker.profile_path) if spots else None,
        "hot_spots": spots,
    }
    return (stats["count"] - 1) / (stats["last"] - stats["first"]), detail


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """Fill one topic per shape, then drain it with a raw consumer and with each worker configuration."""
    scenario = bench.scenario(SECTION)
    startups = []
    for partitions in sizes.partitions:
        queue = f"noop{partitions}"
        _fill(scenario, queue, sizes.processing)
        with scenario.with_group(f"raw{partitions}").active() as settings:
            raw = baseline.consume(settings, scenario.topic(queue), sizes.processing).rate()
        stub = scenario.with_group(f"stub{partitions}")
        rate, detail = _worker(bench, stub, queue, 1, sizes.processing, stub_executor=True)
        name = f"listener alone (stub executor), {partitions}p"
        report.add(Figure(SECTION, name, rate, "jobs/s", raw, f"raw consume {partitions}p", detail=detail))
        for concurrency in sizes.concurrency:
            group = scenario.with_group(f"p{partitions}c{concurrency}")
            rate, detail = _worker(bench, group, queue, concurrency, sizes.processing)
            startups.append(detail["startup_to_first_job_s"])
            name = f"{sizes.processing:,} no-op jobs, {partitions}p, --concurrency {concurrency}"
            report.add(Figure(SECTION, name, rate, "jobs/s", raw, f"raw consume {partitions}p", TARGET, detail=detail))
            for spot, share in detail["hot_spots"]:
                print(f"{'':10} {share:6.1%}  {spot}")
    report.add(
        Figure(
            SECTION,
            "worker start to first job (excluded above)",
            statistics.median(startups),
            "s",
            detail={"each_s": startups, "what": "interpreter, Django setup, topic check, group join, first fetch"},
        )
    )
