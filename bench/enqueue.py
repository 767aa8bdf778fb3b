"""(2) Enqueue rate: perform_later (produce_async, produce_sync) and perform_all_later vs the raw producer.

Beside each rate, the enqueueing thread's CPU time per job (librdkafka's own threads excluded), which a
busy machine disturbs less than a rate, against the raw producer's per message. Issue 11's goals:
perform_later with produce_async at least 60,000 jobs/s, perform_all_later at least 100,000 jobs/s.
"""

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
LATER_GOAL = 60_000.0  # perform_later, produce_async: jobs/s (issue 11)
BATCH_GOAL = 100_000.0  # perform_all_later in batches of 1000: jobs/s (issue 11)
_cpu: dict[str, float] = {}  # the enqueueing thread's CPU seconds per job, by figure name


def _rate(count: int, action: Callable[[], None], name: str = "") -> float:
    """Return count / seconds of ``action`` followed by a flush of the kafka_jobs producer."""
    started, cpu = time.perf_counter(), time.thread_time()
    action()
    _cpu[name] = (time.thread_time() - cpu) / count
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
        raw_async, raw_cpu = baseline.produce_async_cost(settings, messages)
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

        later, batch = "perform_later, produce_async", f"perform_all_later x{sizes.batch}, async"
        figures = [
            (later, _rate(sizes.enqueue, enqueue_async, later), raw_async, "raw produce+flush"),
            ("perform_later, produce_sync", _rate(sizes.enqueue_sync, enqueue_sync), raw_sync, "raw flush each"),
            (batch, _rate(sizes.enqueue, batches(NoopJob), batch), raw_async, "raw produce+flush"),
            (
                f"perform_all_later x{sizes.batch}, sync",
                _rate(sizes.enqueue, batches(SyncNoopJob)),
                raw_batch_sync,
                f"raw flush every {sizes.batch}",
            ),
        ]
    goals = {later: LATER_GOAL, batch: BATCH_GOAL}
    for name, value, raw, raw_name in figures:
        report.add(Figure(SECTION, name, value, "jobs/s", raw, raw_name, TARGET, bound=goals.get(name)))
    for name in (later, batch):
        cpu = _cpu[name] * 1e6
        report.add(
            Figure(SECTION, f"CPU per job, {name}", cpu, "us", raw_cpu * 1e6, "raw produce", higher_is_better=False)
        )
    report.add(Figure(SECTION, "envelope size", len(messages[0].value), "bytes"))
