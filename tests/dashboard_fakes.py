"""Fake Kafka data for the dashboard's unit tests: a DLQ topic of any size, built only where it is read."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from kafka_jobs.deadletter import DeadLetter, Ledger
from kafka_jobs.ops import PartitionReport, WorkerReport


def letter(partition: int, offset: int, topic: str = "dlq.dead", **fields: object) -> DeadLetter:
    """Return a DLQ message as the reader would describe it (job ``tests.jobs.FailingJob`` unless told)."""
    values: dict[str, object] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": None,
        "value": b'{"job": "tests.jobs.FailingJob"}',
        "headers": (("kj-dlq-traceback", b"Traceback (most recent call last):\n  boom"), ("custom", b"yes")),
        "job_name": "tests.jobs.FailingJob",
        "job_id": f"job-{partition}-{offset}",
        "exception_class": "builtins.RuntimeError",
        "exception_message": f"failure {offset}",
        "traceback": "Traceback (most recent call last):\n  boom",
        "source_topic": "dlq",
        "source_partition": 0,
        "source_offset": offset,
        "consumer_group": "workers",
        "attempts": 2,
        "failed_at": "2026-12-02T10:00:00+00:00",
        **fields,
    }
    return DeadLetter(**values)  # type: ignore[arg-type]


class FakeLetterSource:
    """A DLQ topic whose message at each offset is ``make(partition, offset)``; records every window read."""

    def __init__(
        self,
        topic: str = "dlq.dead",
        bounds: dict[int, tuple[int, int]] | None = None,
        make: Callable[[int, int], DeadLetter] | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.topic = topic
        self._bounds = bounds if bounds is not None else {0: (0, 10)}
        self.partitions = sorted(self._bounds)
        self.make = make or (lambda p, o: letter(p, o, topic))
        self._ledger = ledger or Ledger()
        self.reads: list[tuple[int, int, int]] = []  # (partition, start, stop) of every window read
        self.closed = False

    def bounds(self) -> dict[int, tuple[int, int]]:
        return dict(self._bounds)

    def ledger(self) -> Ledger:
        return self._ledger

    def letters(
        self, start: dict[int, int], stop: dict[int, int] | None = None, ledger: Ledger | None = None
    ) -> Iterator[DeadLetter]:
        ledger = ledger or self._ledger
        for partition, first in start.items():
            low, high = self._bounds[partition]
            end = min(high, (stop or {}).get(partition, high))
            self.reads.append((partition, first, end))
            for offset in range(max(first, low), end):
                yield dataclasses.replace(self.make(partition, offset), state=ledger.state(partition, offset))

    @property
    def read_count(self) -> int:
        """How many messages were read in all."""
        return sum(stop - start for _p, start, stop in self.reads)

    def close(self) -> None:
        self.closed = True


# --- Worker reports -------------------------------------------------------------------------------------------


def report(worker: str = "host:1:aaaa", *, age: float = 1.0, **fields: Any) -> WorkerReport:
    """Return a running worker's report made ``age`` seconds ago (fields as in ``kafka_jobs.ops``)."""
    now = dt.datetime.now(dt.UTC)
    values: dict[str, Any] = {
        "worker_id": worker,
        "status": "running",
        "host": worker.split(":", maxsplit=1)[0],
        "pid": int(worker.split(":")[1]),
        "started_at": now - dt.timedelta(minutes=10),
        "reported_at": now - dt.timedelta(seconds=age),
        "interval": 5.0,
        "group_id": "workers",
        "queues": ["default"],
        "concurrency": 4,
        **fields,
    }
    return WorkerReport(**values)


def partition(queue: str = "default", number: int = 0, *, lag: int = 0, **fields: Any) -> PartitionReport:
    """Return a partition as a worker reports it (topic = queue, no prefix)."""
    values: dict[str, Any] = {
        "topic": queue,
        "queue": queue,
        "partition": number,
        "committed": 100,
        "position": 100,
        "end": 100 + lag,
        "lag": lag,
        "buffered": 0,
        "running": 0,
        "paused": False,
        "held": False,
        **fields,
    }
    return PartitionReport(**values)
