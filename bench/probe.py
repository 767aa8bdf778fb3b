"""Cross-process measurement hooks for bench jobs: cheap enough to leave in a no-op job.

A worker subprocess learns where to write from the environment: ``BENCH_STATS_FILE`` receives a JSON summary
of the no-op jobs at exit, one line per process (count, first and last ``time.monotonic()``, which is system-wide on
Linux, so the bench process can compare it with its own clock); ``BENCH_LATENCY_FILE`` receives one line per
latency job.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from pathlib import Path
from typing import IO, Any

CPU_EVERY = 1000  # calls between two readings of the process's CPU time (a system call: not on every call)
MARK_EVERY = 50  # calls between two progress marks (count, time, process CPU): how far a process was, when


class Probe:
    """Count calls; remember the first and the last, the longest gap between two, and CPU time (thread-safe).

    The CPU time is the whole process's (every thread, librdkafka's included) from the first call to the
    last multiple of ``CPU_EVERY``: per call, it shows what a job costs even when the machine is busy
    with other work, which rates measured on the wall clock do not. Every ``MARK_EVERY`` calls a mark
    (count, time, CPU) records the progress, so jobs and CPU of several processes can be compared over
    the same stretch of time (``bench.processes``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.longest_gap = 0.0  # seconds between two consecutive calls, at most
        self.gap_after = 0  # the count of the call the longest gap came after
        self.cpu_first: float | None = None
        self.cpu_mark: tuple[int, float] | None = None  # (count, process CPU seconds) at the last reading
        self.marks: list[tuple[int, float, float]] = []  # (count, time, process CPU seconds) every MARK_EVERY

    def tick(self) -> None:
        """Record one call now."""
        now = time.monotonic()
        with self._lock:
            if self.first is None:
                self.first = now
                self.cpu_first = time.process_time()
            elif self.last is not None and now - self.last > self.longest_gap:
                self.longest_gap = now - self.last
                self.gap_after = self.count
            self.last = now
            self.count += 1
            if self.count % CPU_EVERY == 0:
                self.cpu_mark = (self.count, time.process_time())
            if self.count % MARK_EVERY == 0 or self.count == 1:
                self.marks.append((self.count, now, time.process_time()))

    def cpu_per_call(self) -> float | None:
        """Return the process's CPU seconds per call between the first call and the last reading."""
        if self.cpu_first is None or self.cpu_mark is None or self.cpu_mark[0] <= 1:
            return None
        count, cpu = self.cpu_mark
        return (cpu - self.cpu_first) / (count - 1)

    def summary(self) -> dict[str, Any]:
        """Return the counts and times as JSON-able values."""
        return {
            "pid": os.getpid(),
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "longest_gap": self.longest_gap,
            "gap_after": self.gap_after,
            "cpu_per_call": self.cpu_per_call(),
            "marks": self.marks,
        }

    def rate(self) -> float:
        """Return calls per second between the first and the last call."""
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return (self.count - 1) / (self.last - self.first)


class LatencyLog:
    """Append ``tag latency`` lines to a file, one write and flush per line (readable while running)."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._file: IO[str] = Path(path).open("a")  # noqa: SIM115 - kept open for the process lifetime

    def record(self, tag: str, seconds: float) -> None:
        """Write one measurement."""
        with self._lock:
            self._file.write(f"{tag} {seconds:.6f}\n")
            self._file.flush()


def read_latencies(path: Path, tag: str) -> list[float]:
    """Return the latencies recorded under ``tag`` in ``path`` (none if it does not exist yet)."""
    if not path.exists():
        return []
    values = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == tag:
            values.append(float(parts[1]))
    return values


PROBE = Probe()
_latency_log: LatencyLog | None = None


def latency_log() -> LatencyLog | None:
    """Return this process's latency log if ``BENCH_LATENCY_FILE`` is set."""
    global _latency_log
    if _latency_log is None and os.environ.get("BENCH_LATENCY_FILE"):
        _latency_log = LatencyLog(os.environ["BENCH_LATENCY_FILE"])
    return _latency_log


def _dump_stats() -> None:
    path = os.environ.get("BENCH_STATS_FILE")
    if path and PROBE.count:
        # One line per process: the worker processes of ``--processes`` share the file (short appends are atomic).
        with Path(path).open("a") as stats:
            stats.write(json.dumps(PROBE.summary()) + "\n")


atexit.register(_dump_stats)
