"""(6) Delayed jobs: lateness, what they cost immediate jobs, and worker memory with jobs waiting in tiers.

- Lateness: ``sizes.delayed`` jobs due uniformly over ``sizes.delay_spread`` seconds (default 100,000 over
  60 s) go through the delay tiers of the default ladder; each records start time minus its due time.
- Immediate jobs: a steady stream (``sizes.latency_rate`` per second) on the same queue and partitions
  while those delayed jobs wait and come due, compared with the same stream on an idle worker (same run).
  Both with the forwarder as a thread of the worker (the default) and in a process of its own.
- Memory: peak RSS of a worker with ``sizes.tier_backlog`` jobs waiting in a tier vs ``sizes.tier_small``.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from kafka_jobs import perform_all_later
from kafka_jobs.backends.kafka import build_message
from kafka_jobs.conf import get_settings
from kafka_jobs.delays.messages import delayed_until
from kafka_jobs.producer import get_producer
from kafka_jobs.serializer import get_serializer

from . import baseline
from .env import Bench, Scenario
from .jobs import DelayedProbeJob, ImmediateProbeJob
from .latency import DRAIN_TIMEOUT, WARMUP_TIMEOUT, _paced, _wait, percentile
from .payload import RawMessage, produce_all
from .probe import read_latencies
from .report import Figure, Report
from .sizes import Sizes

SECTION = "delays"
QUEUE = "delays"
LATENCY_TARGET = 1.2
MEMORY_TARGET = 1.1
# Seconds between the start of the enqueue and the first due time: the enqueue must fit in it, or the first
# jobs would be late before the forwarder ever saw them (assume at least 2,500 enqueues a second).
MIN_ENQUEUE_LEAD = 10.0
ENQUEUE_RATE_FLOOR = 2500.0
BATCH = 1000


def _warm_up(log: Path) -> None:
    """Wait until the worker runs jobs and its forwarder forwards: both consumer groups are joined."""

    def send() -> None:
        ImmediateProbeJob.perform_later(time.time(), "warmup")
        DelayedProbeJob.set(wait=0.05).perform_later("warmup-delayed")

    _wait(
        lambda: bool(read_latencies(log, "warmup")) and bool(read_latencies(log, "warmup-delayed")),
        WARMUP_TIMEOUT,
        "the worker and its forwarder to join their groups",
        tick=send,
    )


def _immediate_stream(log: Path, sizes: Sizes) -> list[float]:
    sent = _paced(sizes.latency_rate, sizes.delay_spread, lambda: ImmediateProbeJob.perform_later(time.time(), "run"))
    _wait(lambda: len(read_latencies(log, "run")) >= sent, DRAIN_TIMEOUT, f"{sent} immediate jobs to run")
    return read_latencies(log, "run")


def _idle_run(bench: Bench, sizes: Sizes) -> list[float]:
    """The immediate stream alone: the baseline."""
    scenario = bench.scenario(f"{SECTION}-idle")
    log = bench.workdir / "delays-idle.log"
    worker = bench.worker(scenario, QUEUE, BENCH_LATENCY_FILE=str(log))
    try:
        with scenario.active():
            get_producer()
            _warm_up(log)
            return _immediate_stream(log, sizes)
    finally:
        worker.stop(60.0)


def _loaded_run(bench: Bench, sizes: Sizes, *, separate: bool) -> tuple[list[float], list[float], dict[str, float]]:
    """The same stream while ``sizes.delayed`` jobs wait and come due; return (immediate, lateness, detail).

    ``separate``: the forwarder runs in its own process (``--scheduling-only``) beside a ``--no-scheduling``
    worker, instead of as a thread of the worker.
    """
    name = "separate" if separate else "loaded"
    scenario = bench.scenario(f"{SECTION}-{name}")
    log = bench.workdir / f"delays-{name}.log"
    extra = ["--no-scheduling"] if separate else []
    workers = [bench.worker(scenario, QUEUE, *extra, BENCH_LATENCY_FILE=str(log))]
    if separate:
        workers.append(bench.worker(scenario, QUEUE, "--scheduling-only"))
    try:
        with scenario.active():
            get_producer()
            _warm_up(log)
            lead = max(MIN_ENQUEUE_LEAD, sizes.delayed / ENQUEUE_RATE_FLOOR)
            first_due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead)
            started = time.perf_counter()
            rng = random.Random(8)
            for start in range(0, sizes.delayed, BATCH):
                jobs = []
                for _ in range(min(BATCH, sizes.delayed - start)):
                    due = first_due + dt.timedelta(seconds=rng.uniform(0, sizes.delay_spread))
                    jobs.append(DelayedProbeJob.set(wait_until=due).build("due"))
                perform_all_later(jobs)
            get_producer().flush(60)
            enqueue_seconds = time.perf_counter() - started
            wait = (first_due - dt.datetime.now(dt.UTC)).total_seconds()
            if wait > 0:
                time.sleep(wait)  # the measurement starts with the first due time, not a synchronisation
            immediate = _immediate_stream(log, sizes)
            try:
                _wait(
                    lambda: len(read_latencies(log, "due")) >= sizes.delayed,
                    DRAIN_TIMEOUT + sizes.delay_spread,
                    f"{sizes.delayed} delayed jobs to run",
                )
            except RuntimeError as exc:  # a finding (the figures say how many ran), not a reason to lose the others
                print(f"WARNING: {exc}; {len(read_latencies(log, 'due'))} ran", flush=True)
            detail = {"enqueue_seconds": enqueue_seconds, "enqueue_lead_seconds": lead}
            return immediate, read_latencies(log, "due"), detail
    finally:
        for worker in workers:
            worker.stop(60.0)


def _tier_messages(count: int) -> Iterator[RawMessage]:
    """Yield ``count`` delayed jobs due in a day, as the kafka backend writes them (to the 1-day tier)."""
    job = DelayedProbeJob("never")
    job.scheduled_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    template = get_serializer().dumps(job)
    outgoing = delayed_until(build_message(job, template), job.scheduled_at, get_settings())
    old_id = job.job_id.encode()
    headers = [(key, value) for key, value in outgoing.headers or [] if key != "kj-id"]
    for _ in range(count):
        new_id = str(uuid.uuid4()).encode()
        yield RawMessage(outgoing.topic, template.replace(old_id, new_id), [*headers, ("kj-id", new_id)])


def _peak_rss_mb(bench: Bench, count: int, seconds: float) -> float:
    """Fill a tier with ``count`` jobs, run a worker (forwarder included) for ``seconds``; return its peak RSS."""
    scenario: Scenario = bench.scenario(f"{SECTION}-memory-{count}")
    with scenario.active() as settings:
        messages = _tier_messages(count)
        producer = baseline.connected_producer(settings, next(messages))
        produce_all(producer, messages, timeout=300.0)
    worker = bench.worker(scenario, QUEUE)
    time.sleep(seconds)  # the worker reads its windows full and waits: we measure what it holds meanwhile
    worker.stop(60.0)
    return worker.peak_rss_kb / 1024


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """Measure lateness, immediate latency against an idle run, and memory with a large tier backlog."""
    idle = _idle_run(bench, sizes)
    for separate in (False, True):
        immediate, lateness, detail = _loaded_run(bench, sizes, separate=separate)
        where = f"{sizes.delayed:,} delayed over {sizes.delay_spread:g}s"
        how = ", forwarder in its own process" if separate else ""
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            report.add(
                Figure(
                    SECTION,
                    f"{label} lateness, {where}{how}",
                    percentile(lateness, fraction) * 1000,
                    "ms",
                    higher_is_better=False,
                    detail={
                        "samples": len(lateness),
                        "enqueued": sizes.delayed,
                        "min_ms": min(lateness) * 1000,  # never negative: never before its time
                        "max_ms": max(lateness) * 1000,
                        "early": sum(value < 0 for value in lateness),
                        **detail,
                    },
                )
            )
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            report.add(
                Figure(
                    SECTION,
                    f"{label} immediate latency beside them{how}",
                    percentile(immediate, fraction) * 1000,
                    "ms",
                    percentile(idle, fraction) * 1000,
                    f"no delayed jobs {label}",
                    LATENCY_TARGET,
                    higher_is_better=False,
                    detail={"samples": len(immediate), "baseline_samples": len(idle), "rate": sizes.latency_rate},
                )
            )
    small = _peak_rss_mb(bench, sizes.tier_small, sizes.tier_hold_seconds)
    large = _peak_rss_mb(bench, sizes.tier_backlog, sizes.tier_hold_seconds)
    report.add(
        Figure(
            SECTION,
            f"peak worker RSS, {sizes.tier_backlog:,} jobs waiting in a tier",
            large,
            "MiB",
            small,
            f"{sizes.tier_small:,} waiting",
            MEMORY_TARGET,
            higher_is_better=False,
            detail={"hold_seconds": sizes.tier_hold_seconds},
        )
    )
