"""(3) Processing rate of burst workers on a backlog of no-op jobs vs a raw consume loop.

Both rates run from the first job (message) to the last, as seen by the probe inside the job: the worker's
interpreter and Django start-up, its group join (about 1 s on Tansu: half the session timeout), its first
fetch, and the burst worker's idle detection and shutdown are outside the window (reported separately).
A worker whose executor is a stub (``bench.stub_worker``) shows what the listener alone costs.

Each rate comes with the process's CPU time per job (all its threads, from the first job on), which a
busy machine disturbs less than a rate: compare it with the raw consumer's CPU time per message. The
``--concurrency`` ratio compares 4 threads with 1 on the same backlog (issue 11: at least 0.9). Jobs that
wait (a sleep, as on I/O) spread over six partitions must still run on four threads at once: their ratio
of 4 threads to 1 is the other half of that goal.
"""

from __future__ import annotations

import statistics
from typing import Any

from . import baseline
from .env import Bench, Scenario
from .jobs import NoopJob, SleepJob
from .payload import messages_like, produce_all
from .report import Figure, Report
from .sizes import Sizes

SECTION = "process"
TARGET = 0.5
WORKER_TIMEOUT = 900.0
PER_PROCESS_GOAL = 35_000.0  # no-op jobs/s per process (issue 11)
THREADS_TARGET = 0.9  # --concurrency 4 / --concurrency 1 on no-op jobs (issue 11)
WAITING_JOBS = 480  # jobs that wait, spread evenly over six partitions
WAITING_SECONDS = 0.005  # how long each waits
WAITING_TARGET = 3.0  # --concurrency 4 / --concurrency 1 on them (4 at best)


def _fill(scenario: Scenario, queue: str, count: int) -> None:
    with scenario.active() as settings:
        messages = messages_like(NoopJob.set(queue=queue).build(0), count)
        producer = baseline.connected_producer(settings, next(messages))
        produce_all(producer, messages)


def _fill_waiting(scenario: Scenario, queue: str, count: int, partitions: int = 6) -> None:
    with scenario.active() as settings:
        messages = messages_like(SleepJob.set(queue=queue).build(WAITING_SECONDS), count)
        producer = baseline.connected_producer(settings, next(messages))  # the first one: any partition
        for i, message in enumerate(messages):
            producer.produce(message.topic, message.value, headers=message.headers, partition=(i + 1) % partitions)
        if producer.flush(60):
            raise RuntimeError("jobs that wait: not every message was delivered within 60s")


def _waiting(bench: Bench, scenario: Scenario, sizes: Sizes, report: Report) -> None:
    """Jobs that wait on six partitions: --concurrency 4 must run them in parallel (about 4x --concurrency 1)."""
    queue = "sleep6"
    _fill_waiting(scenario, queue, WAITING_JOBS)
    rates = {}
    for concurrency in sizes.concurrency:
        rate, _ = _worker(bench, scenario.with_group(f"wait-c{concurrency}"), queue, concurrency, WAITING_JOBS)
        rates[concurrency] = rate
    if len(rates) > 1:
        low, high = min(rates), max(rates)
        name = f"--concurrency {high} / --concurrency {low}, 6p jobs waiting {WAITING_SECONDS * 1000:g} ms"
        report.add(Figure(SECTION, name, rates[high], "jobs/s", rates[low], f"--concurrency {low}", WAITING_TARGET))


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
    detail["cpu_us_per_job"] = stats["cpu_per_call"] * 1e6 if stats.get("cpu_per_call") else None
    detail["longest_gap_s"] = stats.get("longest_gap")
    return (stats["count"] - 1) / (stats["last"] - stats["first"]), detail


def _cpu_figure(name: str, detail: dict[str, Any], raw_cpu: float | None) -> Figure | None:
    cpu = detail.get("cpu_us_per_job")
    if cpu is None:
        return None
    baseline_cpu = raw_cpu * 1e6 if raw_cpu else None
    return Figure(SECTION, f"CPU per job, {name}", cpu, "us", baseline_cpu, "raw consume", higher_is_better=False)


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """Fill one topic per shape, then drain it with a raw consumer and with each worker configuration."""
    scenario = bench.scenario(SECTION)
    startups = []
    for partitions in sizes.partitions:
        queue = f"noop{partitions}"
        _fill(scenario, queue, sizes.processing)
        with scenario.with_group(f"raw{partitions}").active() as settings:
            probe = baseline.consume(settings, scenario.topic(queue), sizes.processing)
        raw, raw_cpu = probe.rate(), probe.cpu_per_call()
        stub = scenario.with_group(f"stub{partitions}")
        rate, detail = _worker(bench, stub, queue, 1, sizes.processing, stub_executor=True)
        name = f"listener alone (stub executor), {partitions}p"
        report.add(Figure(SECTION, name, rate, "jobs/s", raw, f"raw consume {partitions}p", detail=detail))
        rates = {}
        for concurrency in sizes.concurrency:
            group = scenario.with_group(f"p{partitions}c{concurrency}")
            rate, detail = _worker(bench, group, queue, concurrency, sizes.processing)
            rates[concurrency] = rate
            startups.append(detail["startup_to_first_job_s"])
            name = f"{sizes.processing:,} no-op jobs, {partitions}p, --concurrency {concurrency}"
            raw_name = f"raw consume {partitions}p"
            figure = Figure(SECTION, name, rate, "jobs/s", raw, raw_name, TARGET, bound=PER_PROCESS_GOAL, detail=detail)
            report.add(figure)
            cpu = _cpu_figure(f"{partitions}p, --concurrency {concurrency}", detail, raw_cpu)
            if cpu is not None:
                report.add(cpu)
            for spot, share in detail["hot_spots"]:
                print(f"{'':10} {share:6.1%}  {spot}")
        if len(rates) > 1:
            low, high = min(rates), max(rates)
            name = f"--concurrency {high} / --concurrency {low}, {partitions}p no-op jobs"
            report.add(Figure(SECTION, name, rates[high], "jobs/s", rates[low], f"--concurrency {low}", THREADS_TARGET))
    _waiting(bench, scenario, sizes, report)
    report.add(
        Figure(
            SECTION,
            "worker start to first job (excluded above)",
            statistics.median(startups),
            "s",
            detail={"each_s": startups, "what": "interpreter, Django setup, topic check, group join, first fetch"},
        )
    )
