"""Jobs the integration tests run in real worker processes. Each records what it did as JSON lines."""

from __future__ import annotations

import json
import os
import threading
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from django.utils import timezone, translation

from kafka_jobs import Job, retry_on
from kafka_jobs.ops.context import ContextVarContext


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


class SyncJob(Job):
    """A job whose enqueue waits for the broker's acknowledgement."""

    queue_as = "default"
    kafka_options = {"dispatch_method": "produce_sync"}

    def perform(self) -> None:
        """Nothing: only its dispatch is under test."""


# Concurrency, ordering and virtual partitions --------------------------------------------------------------


def trace(log: str, event: str, job: Job, **fields: Any) -> None:
    """Record ``event`` for ``job`` with its message coordinates and key, its thread and the wall-clock time."""
    import threading

    message = job.message
    record(
        log,
        event=event,
        job_id=job.job_id,
        topic=message.topic if message else None,
        partition=message.partition if message else None,
        offset=message.offset if message else None,
        message_key=message.key.decode() if message and message.key is not None else None,
        thread=threading.current_thread().name,
        at=time.time(),
        **fields,
    )


class TraceJob(Job):
    """Record its start and end (coordinates, thread, time); work ``seconds`` in between."""

    queue_as = "wide"

    def perform(self, log: str, tag: Any, seconds: float = 0.0) -> None:
        trace(log, "started", self, tag=tag)
        time.sleep(seconds)  # the job's own work, not test synchronisation
        trace(log, "finished", self, tag=tag)


# GatherJob's meeting point, in the worker process: four jobs must be running at once to pass it.
GATHER_PARTIES = 4
GATHER_TIMEOUT = 30.0
_gathering = threading.Barrier(GATHER_PARTIES)


class GatherJob(Job):
    """Wait until four GatherJobs run at once (bounded by GATHER_TIMEOUT); record whether they met.

    A job that waits (like one waiting on I/O) must get a thread of its own while others wait too: with
    fewer than four running at once, the barrier times out and every GatherJob records ``met`` false.
    """

    queue_as = "wide"

    def perform(self, log: str, tag: Any, gather: bool = True) -> None:
        if not gather:  # a quick job
            trace(log, "finished", self, tag=tag, met=None)
            return
        try:
            _gathering.wait(GATHER_TIMEOUT)
            met = True
        except threading.BrokenBarrierError:
            met = False
        trace(log, "finished", self, tag=tag, met=met)


class OrderedJob(Job):
    """A job whose ``key`` argument is its message key: equal keys share a partition and run in order."""

    queue_as = "wide"
    kafka_options = {"partitioner": lambda job: job.args[1]}

    def perform(self, log: str, key: str, seq: int) -> None:
        trace(log, "started", self, key=key, seq=seq)
        trace(log, "finished", self, key=key, seq=seq)


class PartitionedJob(Job):
    """A job sent to the partition its ``partition`` argument names."""

    queue_as = "wide"
    kafka_options = {"partitioner": lambda job: job.args[1], "partition_key_type": "partition"}

    def perform(self, log: str, partition: int, seq: int) -> None:
        trace(log, "finished", self, wanted=partition, seq=seq)


class VirtualJob(Job):
    """A job of the ``virtual`` route, whose virtual partition is its ``key``; may fail on its first run."""

    queue_as = "virtual"

    def perform(self, log: str, key: int, seq: int, seconds: float = 0.0, fail_once: bool = False) -> None:
        first = not fail_once or not any(
            r["job_id"] == self.job_id and r["event"] == "started" for r in read_records(log)
        )
        trace(log, "started", self, key=key, seq=seq)
        time.sleep(seconds)  # the job's own work, not test synchronisation
        if fail_once and first:
            trace(log, "failed", self, key=key, seq=seq)
            raise RuntimeError(f"planned failure of job {seq}")
        trace(log, "finished", self, key=key, seq=seq)


class WidgetJob(Job):
    """Create a Widget from a worker thread; record whether the thread's connection was closed before it."""

    queue_as = "wide"

    def perform(self, log: str, name: str, seconds: float = 0.0) -> None:
        from django.db import connection

        from tests.models import Widget

        fresh = connection.connection is None
        Widget.objects.create(name=name)
        time.sleep(seconds)  # the job's own work, not test synchronisation
        trace(log, "finished", self, name=name, fresh_connection=fresh, connection_id=id(connection))


# --- Failure handling (retries, discard, dead letter queue) ------------------------------------------------


class FlakyError(Exception):
    """What RetryOnJob raises: retry_on gives it a few attempts."""


class PermanentError(Exception):
    """What DiscardOnJob raises: discard_on drops the job."""


class FlakyJob(Job):
    """Fail until it has run ``failures + 1`` times, recording the time and what it knows while running."""

    queue_as = "retry3"

    def perform(self, log: str, failures: int, tag: str = "") -> None:
        runs = [r for r in read_records(log) if r.get("job_id") == self.job_id]
        record(
            log,
            event="ran",
            job_id=self.job_id,
            tag=tag,
            at=time.time(),
            executions=self.executions,
            message=[self.message.topic, self.message.partition, self.message.offset] if self.message else None,
        )
        if len(runs) < failures:
            raise RuntimeError(f"planned failure {len(runs) + 1} of {failures}")


class RetryOnJob(Job):
    """Always raise FlakyError; ``retry_on`` allows three executions in all."""

    queue_as = "dlq"
    retry_on = [retry_on(FlakyError, wait=0.1, attempts=3, jitter=0)]

    def perform(self, log: str) -> None:
        record(log, event="ran", job_id=self.job_id, executions=self.executions)
        raise FlakyError(f"flaky on execution {self.executions}")


class DiscardOnJob(Job):
    """Always raise PermanentError, which ``discard_on`` discards."""

    queue_as = "dlq0"
    discard_on = [PermanentError]

    def perform(self, log: str) -> None:
        record(log, event="ran", job_id=self.job_id, executions=self.executions)
        raise PermanentError("this job can never succeed")


def read_records_so_far(log: str) -> list[dict[str, Any]]:
    """Like ``read_records``, for a log that workers are still writing: a half-written last line is skipped."""
    path = Path(log)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


# --- Enqueueing: batch order, per-job commit deferral (issue 7, items 5 and 6) -----------------------------


class SeqJob(Job):
    """Record its ``seq`` and offset; ``produce_async``, on the one-partition ``single`` queue."""

    queue_as = "single"

    def perform(self, log: str, seq: int) -> None:
        record(log, event="ran", seq=seq, job_id=self.job_id, offset=self.message.offset if self.message else None)


class SyncSeqJob(SeqJob):
    """A SeqJob whose enqueue (alone or in a batch) waits for the broker's acknowledgement."""

    kafka_options = {"dispatch_method": "produce_sync", "dispatch_many_method": "produce_many_sync"}


class AfterCommitSeqJob(SeqJob):
    """A SeqJob that, inside a transaction, is sent when it commits (never if it rolls back)."""

    enqueue_after_commit = True


class AtOnceSeqJob(SeqJob):
    """A SeqJob that is sent at once, even inside a transaction."""

    enqueue_after_commit = False


# --- Failure paths: formatting failures, oversize dead letters, poison envelopes (failures worktree) --------


class UnprintableError(Exception):
    """An exception whose ``__str__`` and ``__repr__`` raise, as a buggy user exception might."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ of UnprintableError is broken")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ of UnprintableError is broken")


class UnprintableJob(Job):
    """Record its run, then raise an exception that cannot be formatted."""

    queue_as = "dlq0"

    def perform(self, log: str) -> None:
        record(log, event="ran", job_id=self.job_id, executions=self.executions)
        raise UnprintableError("cannot be shown")


class RaisingJob(Job):
    """Record its run, then raise ``RuntimeError(message)``; ``payload`` only makes the message larger."""

    queue_as = "dlq0"

    def perform(self, log: str, message: str, payload: str = "") -> None:
        record(log, event="ran", job_id=self.job_id, executions=self.executions)
        raise RuntimeError(message)


# --- Delayed and recurring jobs (worktree delays) -----------------------------------------------------------


class DelayedJob(Job):
    """Record when it ran, when it was due, and where its message was (a queue topic, never a delay tier)."""

    queue_as = "delayed"

    def perform(self, log: str, tag: Any) -> None:
        due = self.scheduled_at.timestamp() if self.scheduled_at is not None else None
        trace(log, "ran", self, tag=tag, due=due, executions=self.executions)


class DelayedKeyJob(DelayedJob):
    """A DelayedJob whose ``key`` argument is its message key."""

    kafka_options = {"partitioner": lambda job: job.args[2]}

    def perform(self, log: str, tag: Any, key: str = "") -> None:  # type: ignore[override]
        super().perform(log, tag)


class TickJob(Job):
    """A recurring job: record each run in the file named by KAFKA_JOBS_TEST_TICK_LOG (set per worker)."""

    queue_as = "delayed"

    def perform(self, schedule: str) -> None:
        record(
            os.environ["KAFKA_JOBS_TEST_TICK_LOG"],
            event="tick",
            schedule=schedule,
            job_id=self.job_id,
            at=time.time(),
            enqueued_at=self.enqueued_at.timestamp() if self.enqueued_at else None,
        )


class DelayRetryJob(Job):
    """On the retry="delay" route: record each run; fail if ``fail`` (always)."""

    queue_as = "delayretry"

    def perform(self, log: str, tag: str, fail: bool = False) -> None:
        trace(log, "ran", self, tag=tag, executions=self.executions)
        if fail:
            raise RuntimeError(f"planned failure of {tag}")


# --- Operations: custom context carried from enqueue to perform (ops worktree) ------------------------------

TENANT: ContextVar[str | None] = ContextVar("tenant", default=None)
TENANT_CONTEXT = ContextVarContext("tenant", TENANT)


class TenantJob(Job):
    """Record the tenant current while it runs; fail if ``fail``."""

    queue_as = "default"

    def perform(self, log: str, fail: bool = False) -> None:
        record(log, event="ran", job_id=self.job_id, tenant=TENANT.get())
        if fail:
            raise RuntimeError("tenant job failure")


# --- Dashboard (worktree dashboard) -------------------------------------------------------------------------


class GatedJob(Job):
    """Record its start, wait until the file ``gate`` exists (at most a minute), record its end.

    A test holds it running for as long as it looks at it (e.g. in the dashboard), then opens the gate.
    """

    queue_as = "single"

    def perform(self, log: str, gate: str, tag: str = "") -> None:
        record(log, event="started", tag=tag, job_id=self.job_id)
        deadline = time.monotonic() + 60
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the test's gate, inside the job
        record(log, event="finished", tag=tag, job_id=self.job_id)
