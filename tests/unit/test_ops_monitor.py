"""The monitor's report of a worker with a fake consumer: partitions, retrying jobs, counters and the rate."""

from __future__ import annotations

import time
from typing import Any

from kafka_jobs.ops.monitor import WorkerMonitor
from kafka_jobs.ops.report import WorkerState
from kafka_jobs.routing import active_job_topic
from kafka_jobs.worker import ExitCode
from kafka_jobs.worker.executor import Outcome, Verdict
from tests.helpers import wait_for
from tests.unit.fakes import FakeCluster, FakeExecutor, WorkerRun, settings

JOBS = active_job_topic("jobs", partitions=2)


def test_report_of_a_worker_with_a_retrying_partition_and_the_job_rate() -> None:
    def handler(message: Any, failures: int) -> Outcome:
        if message.value() == b"fail":
            return Outcome(Verdict.RETRY, delay=60.0, error=RuntimeError("nope"))
        return Outcome(Verdict.DONE)

    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"a", b"b")
    cluster.produce("jobs", 1, b"fail", b"c")
    executor = FakeExecutor(handler)
    run = WorkerRun(cluster, [JOBS], executor).start()
    wait_for(lambda: sorted(executor.runs()) == [0, 0, 1], 10)
    partition = run.worker.ledger.partitions[("jobs", 0)]
    wait_for(lambda: partition.sent is not None and partition.sent.offset == 2, 10)  # the commit follows the runs
    monitor = WorkerMonitor(settings())
    monitor.worker = run.worker
    monitor.stats.topic("jobs").succeeded = 10
    monitor._previous_runs = (time.monotonic() - 2.0, 0)

    report = monitor.build(WorkerState.RUNNING)

    assert run.stop() == ExitCode.OK
    assert 4.0 < report.jobs_per_second <= 5.0
    assert report.queues == ["jobs"] and report.concurrency == 2
    by_partition = {p.partition: p for p in report.partitions}
    assert by_partition[0].committed == 2 and not by_partition[0].paused
    retrying = by_partition[1]
    assert retrying.paused and not retrying.held and retrying.buffered == 2
    (retry,) = retrying.retrying
    assert (retry.offset, retry.failures) == (0, 1)
    assert retry.retry_at is not None and (retry.retry_at - report.reported_at).total_seconds() > 50
    assert report.counters.succeeded == 10


def test_lag_before_the_first_commit_counts_the_fetched_jobs_that_wait() -> None:
    def handler(message: Any, failures: int) -> Outcome:
        return Outcome(Verdict.RETRY, delay=60.0, error=RuntimeError("nope"))  # the head never finishes

    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"a", b"b", b"c")
    executor = FakeExecutor(handler)
    run = WorkerRun(cluster, [JOBS], executor).start()
    wait_for(lambda: executor.runs() == [0], 10)
    monitor = WorkerMonitor(settings())
    monitor.worker = run.worker
    monitor.offsets = {("jobs", 0): (3, 3)}  # everything fetched: position == end
    run.worker.ledger.partitions[("jobs", 0)].sent = None  # as on a partition this worker never committed

    report = monitor.build(WorkerState.RUNNING)

    assert run.stop() == ExitCode.OK
    (partition,) = [p for p in report.partitions if p.partition == 0]
    assert partition.committed is None
    assert partition.lag == 3  # not end - position (0): none of the three ran to completion
