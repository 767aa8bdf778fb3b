"""What the job threads count for reports and metrics: plain integers, written without a lock.

Each job thread only adds to counters and sets its own slot, so the job path costs a few attribute
updates; the reporter and the metrics endpoint read copies. A count read while a job thread updates it
is at most one job behind, which a report every few seconds does not mind.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from bisect import bisect_left
from typing import Any

from django.dispatch import Signal

from .. import signals
from ..headers import ID_HEADER, JOB_HEADER
from ..worker.executor import Outcome, Verdict
from .report import MAX_RECENT_ERRORS, Counters, RecentError, error_text

# Job duration histogram buckets, in seconds (Prometheus' defaults plus longer jobs).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

RETRY = "retry"
DISCARDED = "discarded"
DEAD_LETTERED = "dead-lettered"
FAILED = "failed"


def header(message: Any, name: str) -> str:
    """Return a header of ``message`` as text, "?" if missing (reporter side: never on the job path)."""
    for key, value in message.headers() or []:
        if key == name and value is not None:
            return bytes(value).decode("utf-8", "replace")
    return "?"


def job_of(message: Any) -> tuple[str, str]:
    """Return the job name and id a message's headers give."""
    return header(message, JOB_HEADER), header(message, ID_HEADER)


class TopicStats:
    """Counters and a duration histogram of one topic."""

    __slots__ = ("buckets", "dead_lettered", "discarded", "duration_sum", "failed", "retried", "succeeded")

    def __init__(self) -> None:
        self.succeeded = 0
        self.failed = 0
        self.retried = 0
        self.discarded = 0
        self.dead_lettered = 0
        self.duration_sum = 0.0
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf

    def counters(self) -> Counters:
        """Return a copy of the counters."""
        return Counters(self.succeeded, self.failed, self.retried, self.discarded, self.dead_lettered)


class JobStats:
    """Counts of one worker's jobs, per topic, and what runs now; updated by the job threads."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicStats] = {}
        self.running: dict[int, tuple[Any, float]] = {}  # thread id -> (message, since: time.time()): ObservedExecutor
        self.recent_errors: collections.deque[RecentError] = collections.deque(maxlen=MAX_RECENT_ERRORS)
        # The latest error of each partition's failing job: (topic, partition) -> (offset, text).
        self.last_error: dict[tuple[str, int], tuple[int, str]] = {}
        self._labels: dict[int, str] = {}  # thread id -> what the executor's signals said about its job
        self._lock = threading.Lock()  # only for creating a topic's stats

    # Job threads -------------------------------------------------------------------------------------------

    def topic(self, name: str) -> TopicStats:
        """Return the stats of ``name``, creating them."""
        stats = self.topics.get(name)
        if stats is None:
            with self._lock:
                stats = self.topics.setdefault(name, TopicStats())
        return stats

    def finished(self, thread: int, message: Any, duration: float, outcome: Outcome) -> None:
        """Record how ``thread``'s run of ``message`` ended."""
        del self.running[thread]
        stats = self.topics.get(message.topic()) or self.topic(message.topic())
        stats.duration_sum += duration
        stats.buckets[bisect_left(DURATION_BUCKETS, duration)] += 1
        verdict, error = outcome.verdict, outcome.error
        if error is None and verdict is Verdict.DONE:
            stats.succeeded += 1
            return
        label = self._labels.pop(thread, None)
        if verdict is Verdict.RETRY and not outcome.counts_as_failure:
            return  # not due yet, or only its dead letter is left to write: not a run of the job
        stats.failed += 1
        if verdict is Verdict.RETRY:
            stats.retried += 1
            label = RETRY
        elif verdict is Verdict.CRITICAL:
            label = FAILED
        elif label == RETRY:
            stats.retried += 1  # through the delay tiers
        elif label == DISCARDED:
            stats.discarded += 1
        elif label == DEAD_LETTERED:
            stats.dead_lettered += 1
        self._error(message, error, label or FAILED)

    def _error(self, message: Any, error: BaseException | None, outcome: str) -> None:
        text = error_text(error) if error is not None else "critical error"
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        self.last_error[(topic, partition)] = (offset, text)
        job, job_id = job_of(message)
        now = dt.datetime.now(dt.UTC)
        self.recent_errors.append(RecentError(now, job, job_id, topic, partition, offset, text, outcome))

    # Signal receivers (on the job's thread, inside Executor.process) ----------------------------------------

    def connect(self) -> None:
        """Listen to the executor's failure signals (for the outcome of failed runs)."""
        uid = f"kafka_jobs.ops.stats.{id(self)}"
        for signal, label in self._signals():
            signal.connect(self._receiver(label), weak=False, dispatch_uid=f"{uid}.{label}")

    def disconnect(self) -> None:
        """Stop listening."""
        uid = f"kafka_jobs.ops.stats.{id(self)}"
        for signal, label in self._signals():
            signal.disconnect(dispatch_uid=f"{uid}.{label}")

    @staticmethod
    def _signals() -> list[tuple[Signal, str]]:
        return [
            (signals.job_retried, RETRY),
            (signals.job_discarded, DISCARDED),
            (signals.job_dead_lettered, DEAD_LETTERED),
        ]

    def _receiver(self, label: str) -> Any:
        def receive(**_kwargs: Any) -> None:
            thread = threading.get_ident()
            if thread in self.running:  # a job of this worker, not of another one in the same process
                self._labels[thread] = label

        return receive

    # Readers ----------------------------------------------------------------------------------------------

    def totals(self) -> Counters:
        """Return the counters summed over every topic."""
        return sum((stats.counters() for stats in list(self.topics.values())), Counters())
