"""The benchmark's world: one broker, per-scenario topics and groups, worker subprocesses we measure."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.test.utils import override_settings

from kafka_jobs.conf import KafkaJobsSettings, get_settings
from kafka_jobs.internal_topics import create_internal_topics
from kafka_jobs.routing import get_routes
from kafka_jobs.topics import create_topics

from . import profile

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_INTERVAL = 0.05  # seconds between two readings of a worker's memory and CPU
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy_seconds() -> float | None:
    """Return the CPU seconds every program on this machine used since boot (all cores; Linux), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(field) for field in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float | None:
    """Return the CPU seconds (user and system, every thread) process ``pid`` used so far, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A queue prefix (its own topics) and a consumer group, shared by this process and its workers."""

    prefix: str
    group: str

    def kafka_jobs(self) -> dict[str, Any]:
        """Return KAFKA_JOBS for this scenario (the base settings with prefix and group replaced)."""
        return {**django_settings.KAFKA_JOBS, "QUEUE_PREFIX": self.prefix, "GROUP_ID": self.group}

    def env(self) -> dict[str, str]:
        """Return the environment variables that give a worker subprocess this scenario."""
        return {"BENCH_QUEUE_PREFIX": self.prefix, "BENCH_GROUP_ID": self.group}

    def with_group(self, group: str) -> Scenario:
        """Return the same topics with another consumer group."""
        return dataclasses.replace(self, group=f"{self.prefix}{group}")

    @contextlib.contextmanager
    def active(self) -> Iterator[KafkaJobsSettings]:
        """Switch this process's kafka_jobs settings (producer, routes) to the scenario."""
        with override_settings(KAFKA_JOBS=self.kafka_jobs()):
            yield get_settings()

    def topic(self, queue: str) -> str:
        """Return the topic of ``queue`` in this scenario."""
        with self.active():
            return get_routes().topic_for(queue)

    def create_topics(self) -> None:
        """Create every routed topic (and the delay tier topics) under this scenario's prefix."""
        with self.active() as settings:
            create_topics(settings, list(get_routes()))
            create_internal_topics(settings, recurring=False)


@dataclasses.dataclass
class WorkerRun:
    """One ``runkafkaworker`` subprocess, with its memory and CPU sampled from /proc until it exits.

    ``cpu_samples`` holds (time, CPU seconds of the whole machine, CPU seconds of this process) every
    ``SAMPLE_INTERVAL``: with ``--processes`` this process is the supervisor, whose own CPU it shows.
    """

    process: subprocess.Popen[bytes]
    started: float
    log_path: Path
    stats_path: Path
    peak_rss_kb: int = 0  # the highest VmHWM read from /proc/<pid>/status (ru_maxrss would count the fork)
    ended: float | None = None
    profile_path: Path | None = None
    profiler: subprocess.Popen[bytes] | None = None
    cpu_samples: list[tuple[float, float, float]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def _sample(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while self.ended is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                return
            machine, own = machine_busy_seconds(), process_cpu_seconds(self.pid)
            if machine is not None and own is not None:
                self.cpu_samples.append((time.monotonic(), machine, own))
            time.sleep(SAMPLE_INTERVAL)

    def wait(self, timeout: float) -> int:
        """Reap the worker (SIGTERM, then SIGKILL after ``timeout``); return its exit status."""
        deadline = time.monotonic() + timeout
        signalled = False
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() >= deadline:
                self.process.send_signal(signal.SIGKILL if signalled else signal.SIGTERM)
                signalled, deadline = True, time.monotonic() + 15.0
            time.sleep(0.02)
        self.ended = time.monotonic()
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self._sampler.join(1.0)
        if self.profiler is not None:
            try:
                self.profiler.wait(30)
            except subprocess.TimeoutExpired:
                self.profiler.kill()
                self.profiler.wait(10)
        if self.process.returncode != 0:
            raise RuntimeError(f"worker {self.pid} exited with {self.process.returncode}:\n{self.log_tail()}")
        return self.process.returncode

    def stop(self, timeout: float) -> int:
        """Ask the worker to stop (SIGTERM) and reap it."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def stats(self) -> dict[str, Any]:
        """Return the probe summary the worker wrote at exit (merged over its processes, with --processes)."""
        if not self.stats_path.exists():
            raise RuntimeError(f"worker {self.pid} ran no probed job:\n{self.log_tail()}")
        lines = [json.loads(line) for line in self.stats_path.read_text().splitlines() if line.strip()]
        longest = max(lines, key=lambda line: line.get("longest_gap", 0.0))
        # CPU per job over every process: each one's CPU per job weighed by its jobs.
        measured = [line for line in lines if line.get("cpu_per_call") is not None and line["count"] > 1]
        jobs = sum(line["count"] - 1 for line in measured)
        cpu = sum(line["cpu_per_call"] * (line["count"] - 1) for line in measured) / jobs if jobs else None
        return {
            "pid": self.pid,
            "count": sum(line["count"] for line in lines),
            "first": min(line["first"] for line in lines),
            "last": max(line["last"] for line in lines),
            "longest_gap": longest.get("longest_gap", 0.0),  # within one process
            "gap_after": longest.get("gap_after", 0),
            "cpu_per_call": cpu,
            "processes": lines,
        }

    def hot_spots(self) -> list[tuple[str, float]]:
        """Return the profile summary (empty without --profile or py-spy)."""
        if self.profile_path is None or not self.profile_path.exists():
            return []
        return profile.hot_spots(self.profile_path)

    def log_tail(self, chars: int = 3000) -> str:
        """Return the end of the worker's output."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class Bench:
    """Where a run keeps its files, and how it starts workers against the broker."""

    def __init__(self, bootstrap_servers: str, workdir: Path, *, run_id: str, profile_dir: Path | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.workdir = workdir
        self.run_id = run_id
        self.profile_dir = profile_dir  # --profile: py-spy samples of the workers that ask for it go there
        self._workers: list[WorkerRun] = []

    def scenario(self, name: str) -> Scenario:
        """Return a scenario with fresh topics (created) and its own consumer group."""
        prefix = f"bench.{self.run_id}.{name}."
        scenario = Scenario(prefix, f"{prefix}group")
        scenario.create_topics()
        return scenario

    def worker(
        self,
        scenario: Scenario,
        queue: str,
        *args: str,
        overrides: dict[str, Any] | None = None,
        profiled: bool = False,
        stub_executor: bool = False,
        **env: str,
    ) -> WorkerRun:
        """Start ``runkafkaworker --queues queue *args`` for ``scenario`` (logs at WARNING).

        ``stub_executor`` runs ``bench.stub_worker`` instead: the same command with a no-op executor.
        """
        name = f"worker-{len(self._workers) + 1}"
        log_path = self.workdir / f"{name}.log"
        stats_path = self.workdir / f"{name}.stats.json"
        program = ["bench.stub_worker"] if stub_executor else ["django", "runkafkaworker"]
        command = [sys.executable, "-m", *program, "--queues", queue, "--log-level", "WARNING"]
        environment = {
            **os.environ,
            **scenario.env(),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "BENCH_STATS_FILE": str(stats_path),
            "BENCH_OVERRIDES": json.dumps(overrides or {}),
            **env,
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, *args], cwd=ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        worker = WorkerRun(process, time.monotonic(), log_path, stats_path)
        if profiled and self.profile_dir is not None:
            worker.profile_path = self.profile_dir / f"{self.run_id}-{name}.pyspy.txt"
            worker.profiler = profile.attach(process.pid, worker.profile_path)
        self._workers.append(worker)
        return worker

    def close(self) -> None:
        """Kill (by pid) and reap every worker still running, e.g. after a failed section."""
        for worker in self._workers:
            if worker.ended is None:
                worker.process.send_signal(signal.SIGKILL)
                with contextlib.suppress(RuntimeError):
                    worker.wait(15.0)
