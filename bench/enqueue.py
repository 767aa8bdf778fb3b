"""(2) Enqueue rate: perform_later (produce_async, produce_sync) and perform_all_later vs the raw producer."""

from __future__ import annotations

import time
from collections.abc import Callable

from kafka_jobs.job import perform_all_later
from kafka_jobs.producer import get_producer

from . import baseline
from .env import Bench
from .jobs import NoopJob, SyncNoopJob
from .payload import messages_like
from .report import Figure, Report
from .sizes import Sizes

SECTION = "enqueue"
TARGET = 0.5


def _rate(count: int, action: Callable[[], None]) -> float:
    """Return count / seconds of ``action`` followed by a flush of the kafka_jobs producer."""
    started = time.perf_counter()
    action()
    if get_producer().flush(60):
        raise RuntimeError("kafka_jobs producer: messages left undelivered after 60s")
    return count / (time.perf_counter() - started)


def _warm_up() -> None:
    """Connect the kafka_jobs producer before timing (metadata, producer id), as the raw one is."""
    NoopJob.perform_later(-1)
    get_producer().flush(30)


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """Measure enqueue rates and their raw baselines on a 6-partition topic (NoopJob's queue)."""
    scenario = bench.scenario(SECTION)
    with scenario.active() as settings:
        _warm_up()
        messages = list(messages_like(NoopJob(0), sizes.enqueue))
        raw_async = baseline.produce_async_rate(settings, messages)
        raw_sync = baseline.produce_sync_rate(settings, messages[: sizes.enqueue_sync])
        raw_batch_sync = baseline.produce_sync_rate(settings, messages, batch=sizes.batch)

        def enqueue_async() -> None:
            for number in range(sizes.enqueue):
                NoopJob.perform_later(number)

        def enqueue_sync() -> None:
            for number in range(sizes.enqueue_sync):
                SyncNoopJob.perform_later(number)

        def batches(job_class: type[NoopJob]) -> Callable[[], None]:
            def enqueue() -> None:
                for start in range(0, sizes.enqueue, sizes.batch):
                    perform_all_later(job_class(n) for n in range(start, min(start + sizes.batch, sizes.enqueue)))

            return enqueue

        figures = [
            ("perform_later, produce_async", _rate(sizes.enqueue, enqueue_async), raw_async, "raw produce+flush"),
            ("perform_later, produce_sync", _rate(sizes.enqueue_sync, enqueue_sync), raw_sync, "raw flush each"),
            (
                f"perform_all_later x{sizes.batch}, async",
                _rate(sizes.enqueue, batches(NoopJob)),
                raw_async,
                "raw produce+flush",
            ),
            (
                f"perform_all_later x{sizes.batch}, sync",
                _rate(sizes.enqueue, batches(SyncNoopJob)),
                raw_batch_sync,
                f"raw flush every {sizes.batch}",
            ),
        ]
    for name, value, raw, raw_name in figures:
        report.add(Figure(SECTION, name, value, "jobs/s", raw, raw_name, TARGET))
    report.add(Figure(SECTION, "envelope size", len(messages[0].value), "bytes"))
