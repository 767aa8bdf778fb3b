"""Jobs the benchmark enqueues and runs; they do nothing but feed the probe."""

from __future__ import annotations

import time

from kafka_jobs import Job

from .probe import PROBE, latency_log


class NoopJob(Job):
    """Do nothing (counted by the probe); dispatched with produce_async."""

    queue_as = "noop6"

    def perform(self, number: int) -> None:
        PROBE.tick()


class SyncNoopJob(NoopJob):
    """The same job, dispatched with produce_sync (each enqueue waits for the broker's acknowledgement)."""

    kafka_options = {"dispatch_method": "produce_sync", "dispatch_many_method": "produce_many_sync"}


class LatencyJob(Job):
    """Record how long ago (wall clock) the job was enqueued."""

    queue_as = "latency"

    def perform(self, sent_at: float, tag: str) -> None:
        log = latency_log()
        if log is not None:
            log.record(tag, time.time() - sent_at)


class ImmediateProbeJob(Job):
    """Record how long ago (wall clock) it was enqueued, on the queue the delayed jobs share."""

    queue_as = "delays"

    def perform(self, sent_at: float, tag: str) -> None:
        log = latency_log()
        if log is not None:
            log.record(tag, time.time() - sent_at)


class DelayedProbeJob(Job):
    """Record how late it started: now minus its due time (never negative if never early)."""

    queue_as = "delays"

    def perform(self, tag: str) -> None:
        log = latency_log()
        if log is not None and self.scheduled_at is not None:
            log.record(tag, time.time() - self.scheduled_at.timestamp())


class CpuJob(Job):
    """Compute for about a millisecond per 10,000 ``iterations`` in pure Python (holding the GIL), then tick."""

    queue_as = "cpu6"

    def perform(self, iterations: int) -> None:
        total = 0
        for i in range(iterations):
            total += i * i
        PROBE.tick()


class SleepJob(Job):
    """Wait ``seconds`` without the GIL, as a job waiting on I/O does, then tick: threads must overlap these."""

    queue_as = "sleep6"

    def perform(self, seconds: float) -> None:
        time.sleep(seconds)
        PROBE.tick()
