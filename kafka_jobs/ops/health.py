"""The worker's liveness file: written by the poll loop, read by ``manage.py kafkaworkerhealth``.

The file holds when the poll loop last turned and when the consumer last said its group coordinator was
up (librdkafka's statistics, every ``STATS_INTERVAL_MS``). A loop that stops turning (a deadlock, a
blocked callback) or a consumer cut off from its group for too long makes the health command fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import time
from typing import Any, Self

from ..exceptions import ReportError

# The poll loop writes the file at most this often.
TOUCH_INTERVAL = 1.0
# How often librdkafka reports its state (the consumer's statistics callback runs inside poll()).
STATS_INTERVAL_MS = 5000
DEFAULT_MAX_LOOP_AGE = 60.0
DEFAULT_MAX_CONSUMER_AGE = 120.0


def process_health_file(path: str, index: int | None) -> str:
    """Return the health file of worker process ``index`` of ``--processes`` (``PATH.<index>``), or ``path``."""
    return path if index is None else f"{path}.{index}"


def health_files(path: str) -> list[str]:
    """Return the health files a check of ``path`` reads: ``path`` itself, else one per worker process."""
    if os.path.exists(path):
        return [path]
    return sorted(glob.glob(glob.escape(path) + ".[0-9]*"), key=lambda name: int(name.rpartition(".")[2]))


@dataclasses.dataclass(frozen=True)
class Health:
    """What the health file says (times in seconds since the epoch)."""

    pid: int
    worker_id: str
    loop: float  # the poll loop last turned
    consumer_ok: float  # the consumer last reported its group coordinator up (the start time until it did)

    def problem(self, now: float, max_loop_age: float, max_consumer_age: float) -> tuple[int, str] | None:
        """Return (exit status, why) if the worker looks stuck, else None."""
        if now - self.loop > max_loop_age:
            return 2, f"the poll loop of worker {self.worker_id} has not turned for {now - self.loop:.0f}s"
        if now - self.consumer_ok > max_consumer_age:
            return 3, (
                f"the consumer of worker {self.worker_id} has not reached its group coordinator for "
                f"{now - self.consumer_ok:.0f}s (is the broker reachable?)"
            )
        return None

    @classmethod
    def read(cls, path: str) -> Self:
        """Read the file; raise ``OSError`` if it cannot be read, ``ReportError`` if it is not a health file."""
        with open(path, "rb") as file:
            raw = file.read()
        try:
            data: Any = json.loads(raw)
            return cls(int(data["pid"]), str(data["worker_id"]), float(data["loop"]), float(data["consumer_ok"]))
        except (ValueError, KeyError, TypeError) as exc:
            why = f"no {exc} field" if isinstance(exc, KeyError) else str(exc)
            raise ReportError(
                f"{path} is not a kafka_jobs health file ({why}). Point --file at the file the worker writes "
                "(runkafkaworker --health-file or KAFKA_JOBS['HEALTH_FILE'])."
            ) from exc


class HealthFile:
    """Writes the health file of one worker (from the poll thread)."""

    def __init__(self, path: str, worker_id: str) -> None:
        self.path = path
        self.worker_id = worker_id
        self.consumer_ok = time.time()  # a grace period from the start
        # False when the project's CONSUMER settings take librdkafka's statistics for themselves: then the
        # consumer's state is unknown and only the loop is checked.
        self.tracks_consumer = True
        self._next = 0.0

    def on_stats(self, stats_json: str) -> None:
        """librdkafka's statistics callback (inside poll): note when the group coordinator is up."""
        with contextlib.suppress(ValueError, AttributeError):
            if json.loads(stats_json).get("cgrp", {}).get("state") == "up":
                self.consumer_ok = time.time()

    def maybe_touch(self, now: float) -> None:
        """Write the file if ``TOUCH_INTERVAL`` passed since the last time."""
        if now >= self._next:
            self._next = now + TOUCH_INTERVAL
            self.touch()

    def touch(self) -> None:
        """Write the file now (atomically: a reader never sees half of it)."""
        now = time.time()
        consumer_ok = self.consumer_ok if self.tracks_consumer else now
        data = {"pid": os.getpid(), "worker_id": self.worker_id, "loop": now, "consumer_ok": consumer_ok}
        temporary = f"{self.path}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):
            with open(temporary, "w") as file:
                json.dump(data, file)
            os.replace(temporary, self.path)

    def remove(self) -> None:
        """Delete the file (a stopped worker is not alive)."""
        with contextlib.suppress(OSError):
            os.remove(self.path)
