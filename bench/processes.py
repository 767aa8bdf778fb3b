"""(6) ``runkafkaworker --processes N`` against one process, for no-op and for CPU-bound jobs, on 6 partitions.

Each backlog is spread evenly over the partitions. Each configuration drains it as a burst worker with a
consumer group of its own. Its rate is the steady-state throughput of all its processes: the jobs they ran
together between the moment the last of them ran its first job and the moment the first of them ran its last
one, per second (the probe's marks give each process's count over time, on a system-wide clock). Left out,
and reported beside it: the interpreter and Django start-up and the group join (as in the processing
section), and the time one process ran alone at either end, ``first_job_skew_s`` (its partner started later)
and ``last_job_skew_s`` (its partner's share ran out first; a burst worker then exits). The rate of the
whole drain, from the first job to the last, is ``drain_rate`` in the detail and a figure of its own (no
target). ``cores_busy`` is each process's CPU time (all threads) over the same window per second: below 1
the process waited, for a CPU (the broker and every other program share the cores) or for work;
``jobs_per_cpu_s`` is the jobs over all their CPU time in it, which moves much less than the rates when
other programs load the machine. ``machine_cores_busy`` (every program, from /proc/stat),
``supervisor_cores`` and ``other_cores`` (the machine minus the worker processes and the supervisor: the
broker, the bench, anything else) complete the CPU account of the window. The ratio is N processes over one;
the targets are those of issue 11 on a 2-core machine.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
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
# The window every process ran in must cover at least this share of the drain, or the drain rate is reported.
MIN_STEADY_SHARE = 0.5


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


def _at(points: Sequence[Sequence[float]], t: float, column: int, time_column: int = 1) -> float:
    """Return ``column`` of ``points`` (the probe's marks: count, time, CPU) at time ``t``, interpolated linearly."""
    times = [point[time_column] for point in points]
    i = min(max(bisect.bisect_left(times, t), 1), len(points) - 1)
    (t0, v0), (t1, v1) = (times[i - 1], points[i - 1][column]), (times[i], points[i][column])
    return v0 if t1 <= t0 else v0 + (v1 - v0) * (min(max(t, t0), t1) - t0) / (t1 - t0)


def steady_state(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the jobs and CPU of every process over the window in which they all ran (probe summaries)."""
    start, end = max(line["first"] for line in lines), min(line["last"] for line in lines)
    first, last = min(line["first"] for line in lines), max(line["last"] for line in lines)
    result: dict[str, Any] = {"start": start, "end": end, "window_s": max(end - start, 0.0), "drain_s": last - first}
    if end <= start:
        return result
    jobs, busy = 0.0, []
    for line in lines:
        marks = [*line["marks"], (line["count"], line["last"], line["marks"][-1][2])]
        jobs += _at(marks, end, 0) - _at(marks, start, 0)
        cpu_marks = line["marks"]  # CPU is read at the marks only
        if len(cpu_marks) > 1:
            busy.append((_at(cpu_marks, end, 2) - _at(cpu_marks, start, 2)) / (end - start))
    result.update(jobs=jobs, rate=jobs / (end - start), cores_busy=[round(each, 2) for each in busy])
    if len(busy) == len(lines) and sum(busy) > 0:
        result["jobs_per_cpu_s"] = jobs / (sum(busy) * (end - start))
    return result


def cpu_accounting(samples: list[tuple[float, float, float]], start: float, end: float) -> dict[str, float]:
    """Return the whole machine's and the worker command's own CPU over the window, in cores (WorkerRun samples)."""
    inside = [sample for sample in samples if start <= sample[0] <= end]
    if len(samples) < 2 or end <= start or len(inside) < 2:
        return {}
    return {
        "machine": (_at(samples, end, 1, 0) - _at(samples, start, 1, 0)) / (end - start),
        "command": (_at(samples, end, 2, 0) - _at(samples, start, 2, 0)) / (end - start),
    }


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
    drain_rate = (stats["count"] - 1) / (stats["last"] - stats["first"])
    steady = steady_state(lines)
    cores = cpu_accounting(worker.cpu_samples, steady["start"], steady["end"])
    workers = sum(steady.get("cores_busy") or [])
    if processes == 1:
        cores.pop("command", None)  # the worker itself: counted in cores_busy
    supervisor = cores.get("command", 0.0)
    detail = {
        "jobs": stats["count"],
        "jobs_per_process": [line["count"] for line in lines],
        # How long one process ran alone at the start and at the end (outside the steady-state window):
        "first_job_skew_s": max(line["first"] for line in lines) - stats["first"],
        "last_job_skew_s": stats["last"] - min(line["last"] for line in lines),
        "steady_window_s": steady["window_s"],
        "drain_s": steady["drain_s"],
        "drain_rate": drain_rate,
        "cores_busy": steady.get("cores_busy"),
        "jobs_per_cpu_s": steady.get("jobs_per_cpu_s"),
        # Over the same window, in cores: every program on the machine, the supervisor (--processes), and what
        # neither the worker processes nor the supervisor used (the broker, the bench, anything else running).
        "machine_cores_busy": cores.get("machine"),
        "supervisor_cores": cores.get("command"),
        "other_cores": cores["machine"] - workers - supervisor if "machine" in cores and workers else None,
        "startup_to_first_job_s": stats["first"] - worker.started,
        "wall_s": worker.ended - worker.started,
    }
    if len(lines) == 1 or steady["window_s"] < MIN_STEADY_SHARE * steady["drain_s"]:
        detail["rate_is"] = "drain" if len(lines) > 1 else "one process: first to last job"
        return drain_rate, detail
    detail["rate_is"] = "steady state: while every process ran"
    return steady["rate"], detail


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
        # The same drain from its first job to its last, ends included (what a one-off backlog costs in time).
        drain = {key: detail[key] for key in ("drain_s", "first_job_skew_s", "last_job_skew_s")}
        report.add(
            Figure(SECTION, f"{name}, whole drain", detail["drain_rate"], "jobs/s", one, "1 process", detail=drain)
        )
