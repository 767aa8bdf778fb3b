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


class Probe:
    """Count calls and remember when the first and the last happened (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    def tick(self) -> None:
        """Record one call now."""
        now = time.monotonic()
        with self._lock:
            if self.first is None:
                self.first = now
            self.last = now
            self.count += 1

    def summary(self) -> dict[str, Any]:
        """Return the counts and times as JSON-able values."""
        return {"pid": os.getpid(), "count": self.count, "first": self.first, "last": self.last}

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
