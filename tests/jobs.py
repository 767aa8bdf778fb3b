"""Jobs the integration tests run in real worker processes. Each records what it did as JSON lines."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from django.utils import timezone, translation

from kafka_jobs import Job


def record(log: str, **fields: Any) -> None:
    """Append one JSON line to ``log`` (appends of one short line are atomic across processes)."""
    with Path(log).open("a") as fh:
        fh.write(json.dumps({"pid": os.getpid(), **fields}, default=str) + "\n")


def read_records(log: str) -> list[dict[str, Any]]:
    """Return the JSON lines of ``log`` (none if it does not exist yet)."""
    path = Path(log)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RecordJob(Job):
    """Record the arguments it ran with, and its coordinates."""

    queue_as = "default"

    def perform(self, log: str, *args: Any, **kwargs: Any) -> None:
        widget = kwargs.pop("widget", None)
        record(
            log,
            event="ran",
            job_id=self.job_id,
            args=args,
            kwargs=kwargs,
            executions=self.executions,
            widget=[type(widget).__name__, widget.pk, widget.name] if widget is not None else None,
            topic=self.message.topic if self.message else None,
            partition=self.message.partition if self.message else None,
            offset=self.message.offset if self.message else None,
            locale=translation.get_language(),
            timezone=timezone.get_current_timezone_name(),
        )


class FailingJob(Job):
    """Fail until it has run ``failures + 1`` times (counted in its log), then succeed."""

    queue_as = "default"

    def perform(self, log: str, failures: int, tag: str = "") -> None:
        runs = [r for r in read_records(log) if r.get("job_id") == self.job_id]
        record(log, event="ran", job_id=self.job_id, tag=tag, executions=self.executions)
        if len(runs) < failures:
            raise RuntimeError(f"planned failure {len(runs) + 1} of {failures}")


class SlowJob(Job):
    """Record its start, work for ``seconds``, record its end."""

    queue_as = "single"

    def perform(self, log: str, tag: str, seconds: float) -> None:
        record(log, event="started", tag=tag, job_id=self.job_id)
        time.sleep(seconds)  # the job's own work, not test synchronisation
        record(log, event="finished", tag=tag, job_id=self.job_id)


class ExitJob(Job):
    """Raise SystemExit the first time it runs (in a given log), succeed afterwards."""

    queue_as = "single"

    def perform(self, log: str) -> None:
        first = not any(r.get("job_id") == self.job_id for r in read_records(log))
        record(log, event="ran", job_id=self.job_id)
        if first:
            raise SystemExit(9)
