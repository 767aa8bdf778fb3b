"""(6) ``runkafkaworker --processes N`` against one process, for no-op and for CPU-bound jobs, on 6 partitions.

Each backlog is spread evenly over the partitions. Each configuration drains it as a burst worker with a
consumer group of its own; its rate runs from the first job to the last of all its processes (the probe's
clock is system-wide), so the interpreter and Django start-up and the group join are outside it, as in the
processing section. Time one process ran alone at either end (it joined the group late, or its share ran
out early) is inside it, and reported as ``first_job_skew_s`` / ``last_job_skew_s``. The ratio is N
processes over one; the targets are those of issue 11 on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka_jobs import Job

from . import baseline
from .env import Bench, Scenario
from .jobs import CpuJob, NoopJob
from .payload import messages_like
from .report import Figure, Report
from .sizes import Sizes

SECTION = "processes"
TARGETS = {"noop6": 1.5, "cpu6": 1.7}
CONCURRENCY = 1  # one thread per process: the comparison is of processes
PARTITIONS = 6
WORKER_TIMEOUT = 900.0


def _fill(scenario: Scenario, make_job: Callable[[], Job], count: int) -> None:
    """Produce ``count`` copies of the job, the same number to each partition (so N processes get equal shares)."""
    with scenario.active() as settings:  # the job's topic has the scenario's prefix
        messages = messages_like(make_job(), count)
        producer = baseline.connected_producer(settings, next(messages))  # the first goes to partition 0
        for sent, message in enumerate(messages, start=1):
            while True:
                try:
                    producer.produce(message.topic, message.value, headers=message.headers, partition=sent % PARTITIONS)
                    break
                except BufferError:  # local queue full: let deliveries drain it
                    producer.poll(0.05)
        if producer.flush(120):
            raise RuntimeError("the backlog was not delivered within 120s")


def _drain(bench: Bench, scenario: Scenario, queue: str, processes: int, jobs: int) -> tuple[float, dict[str, Any]]:
    """Run a burst worker of ``processes`` processes over the backlog; return its rate and details."""
    arguments = ["--burst", "--concurrency", str(CONCURRENCY)]
    if processes > 1:
        arguments += ["--processes", str(processes)]
    worker = bench.worker(scenario, queue, *arguments)
    worker.wait(WORKER_TIMEOUT)
    stats = worker.stats()
    if stats["count"] < jobs:
        raise RuntimeError(f"worker ran {stats['count']} of {jobs} jobs:\n{worker.log_tail()}")
    assert worker.ended is not None
    lines = stats["processes"]
    detail = {
        "jobs": stats["count"],
        "jobs_per_process": [line["count"] for line in lines],
        # How long one process ran alone at the start and at the end (inside the measured window):
        "first_job_skew_s": max(line["first"] for line in lines) - stats["first"],
        "last_job_skew_s": stats["last"] - min(line["last"] for line in lines),
        "startup_to_first_job_s": stats["first"] - worker.started,
        "wall_s": worker.ended - worker.started,
    }
    return (stats["count"] - 1) / (stats["last"] - stats["first"]), detail


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """Fill a no-op and a CPU-bound backlog; drain each with one process, then with ``sizes.processes``."""
    scenario = bench.scenario(SECTION)
    backlogs = {
        "noop6": (lambda: NoopJob.set(queue="noop6").build(0), sizes.process_noop, "no-op"),
        "cpu6": (lambda: CpuJob.set(queue="cpu6").build(sizes.cpu_iterations), sizes.cpu_jobs, "CPU-bound"),
    }
    for queue, (make_job, count, kind) in backlogs.items():
        _fill(scenario, make_job, count)
        one, one_detail = _drain(bench, scenario.with_group(f"{queue}-1"), queue, 1, count)
        report.add(Figure(SECTION, f"{count:,} {kind} jobs, 6p, 1 process", one, "jobs/s", detail=one_detail))
        if sizes.processes < 2:
            continue
        many, detail = _drain(bench, scenario.with_group(f"{queue}-{sizes.processes}"), queue, sizes.processes, count)
        name = f"{count:,} {kind} jobs, 6p, --processes {sizes.processes}"
        target = TARGETS[queue] if sizes.processes == 2 else None
        report.add(Figure(SECTION, name, many, "jobs/s", one, "1 process", target, detail=detail))
