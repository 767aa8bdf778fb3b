"""A queue paused by an operator (``Ledger.hold``) with a fake consumer: no job starts, nothing is fetched,
and a partition paused for a retry backoff too resumes only when both are lifted."""

from __future__ import annotations

from typing import Any

from kafka_jobs.routing import active_job_topic
from kafka_jobs.worker import ExitCode
from kafka_jobs.worker.executor import Outcome, Verdict
from tests.helpers import wait_for
from tests.unit.fakes import FakeCluster, FakeConsumer, FakeExecutor, WorkerRun

JOBS = active_job_topic("jobs", partitions=1)
OTHER = active_job_topic("other", partitions=1)
WAIT = 10.0
TP = ("jobs", 0)
HELD = frozenset({"jobs"})


def failing_once(delay: float) -> FakeExecutor:
    """Fail the message b"fail" once (retry after ``delay``), run everything else."""

    def handler(message: Any, failures: int) -> Outcome:
        if message.value() == b"fail" and failures == 0:
            return Outcome(Verdict.RETRY, delay=delay, error=RuntimeError("once"))
        return Outcome(Verdict.DONE)

    return FakeExecutor(handler)


def failed_once(delay: float) -> tuple[WorkerRun, FakeExecutor]:
    """Start a worker on b"fail", b"b" of ``TP``; return once b"fail" failed (retried after ``delay``)."""
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"fail", b"b")
    executor = failing_once(delay)
    run = WorkerRun(cluster, [JOBS], executor).start()
    wait_for(lambda: executor.runs("jobs") == [0], WAIT)
    return run, executor


def turns(consumer: FakeConsumer, count: int) -> None:
    """Wait until the poll loop turned ``count`` more times."""
    start = consumer.polls
    wait_for(lambda: consumer.polls >= start + count, WAIT)


def test_held_before_assignment_nothing_runs_until_released() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"a", b"b")
    cluster.produce("other", 0, b"x")
    executor = FakeExecutor()
    run = WorkerRun(cluster, [JOBS, OTHER], executor)
    run.worker.ledger.hold(HELD)  # as the monitor does before the worker joins the group
    run.start()
    wait_for(lambda: executor.runs("other") == [0], WAIT)
    consumer = run.consumer
    assert consumer is not None
    wait_for(lambda: TP in consumer.paused, WAIT)
    turns(consumer, 3)
    assert executor.runs("jobs") == []

    run.worker.ledger.hold(frozenset())
    wait_for(lambda: executor.runs("jobs") == [0, 1], WAIT)
    assert TP not in consumer.paused
    assert run.stop() == ExitCode.OK


def test_backoff_ending_while_held_keeps_the_partition_paused_until_released() -> None:
    run, executor = failed_once(0.2)
    run.worker.ledger.hold(HELD)
    state = run.worker.ledger.partitions[TP]
    wait_for(lambda: all(lane.retry_at is None for lane in state), WAIT)  # the backoff is over
    consumer = run.consumer
    assert consumer is not None
    turns(consumer, 3)
    assert executor.runs("jobs") == [0] and TP in consumer.paused

    run.worker.ledger.hold(frozenset())
    wait_for(lambda: executor.runs("jobs") == [0, 0, 1], WAIT)
    wait_for(lambda: TP not in consumer.paused, WAIT)
    assert run.stop() == ExitCode.OK


def test_release_during_a_backoff_keeps_the_partition_paused_until_the_retry() -> None:
    run, executor = failed_once(3.0)
    consumer = run.consumer
    assert consumer is not None
    run.worker.ledger.hold(HELD)
    turns(consumer, 2)
    run.worker.ledger.hold(frozenset())
    turns(consumer, 3)
    assert TP in consumer.paused and executor.runs("jobs") == [0]  # still backing off

    wait_for(lambda: executor.runs("jobs") == [0, 0, 1], WAIT)
    wait_for(lambda: TP not in consumer.paused, WAIT)
    assert run.stop() == ExitCode.OK


def test_burst_ends_when_only_held_partitions_have_jobs() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"a", b"b")
    cluster.produce("other", 0, b"x")
    executor = FakeExecutor()
    run = WorkerRun(cluster, [JOBS, OTHER], executor, burst=True)
    run.worker.ledger.hold(HELD)
    run.start()
    assert run.wait(WAIT) == ExitCode.OK
    assert executor.runs("other") == [0] and executor.runs("jobs") == []
    assert cluster.offset("jobs", 0) < 0  # nothing committed for the paused queue: it runs after the resume
