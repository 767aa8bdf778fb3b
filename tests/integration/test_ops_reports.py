"""Worker reports on the reports topic, read back as the dashboard reads them (real broker, real workers)."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from kafka_jobs.ops import ReportReader, WorkerReport, WorkerState, read_reports
from kafka_jobs.producer import get_producer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv, WorkerProcess
from tests.jobs import FailingJob, RecordJob, SlowJob

pytestmark = pytest.mark.integration

FAST_REPORTS = {"REPORT_INTERVAL": 0.5, "BACKOFF": {"INITIAL": 30.0, "MAX": 30.0}}


def report_of(worker: WorkerProcess, reader: ReportReader | None = None) -> WorkerReport | None:
    """Return the latest report of ``worker`` (by its pid), or None."""
    reports = reader.refresh() if reader is not None else read_reports()
    mine = [r for r in reports if r.pid == worker.pid]
    return mine[-1] if mine else None


def wait_report(
    worker: WorkerProcess,
    check: Callable[[WorkerReport], bool],
    reader: ReportReader | None = None,
    timeout: float = 30,
) -> WorkerReport:
    """Wait for a report of ``worker`` for which ``check(report)`` is true."""
    seen: list[WorkerReport | None] = [None]

    def found() -> WorkerReport | None:
        seen[0] = report_of(worker, reader)
        return seen[0] if seen[0] is not None and check(seen[0]) else None

    return wait_for(found, timeout=timeout, message=lambda: f"last report: {seen[0]!r}\n{worker.output()[-3000:]}")


@pytest.mark.kafka_jobs_overrides(FAST_REPORTS)
@pytest.mark.django_db(transaction=True)
def test_report_shows_counts_lag_running_and_retrying_jobs_then_stopped(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    for i in range(3):
        RecordJob.set(partition=0).perform_later(log, i)
    failing = FailingJob.set(partition=1).perform_later(log, 5, "f")
    SlowJob.perform_later(log, "slow", 3.0)
    get_producer().flush(10)
    worker = kafka_env.start_worker("--concurrency", "3")
    reader = ReportReader()
    try:
        report = wait_report(worker, lambda r: any(j.job == "tests.jobs.SlowJob" for j in r.running), reader)
        assert report.state() is WorkerState.RUNNING
        assert sorted(report.queues)[:2] == ["backoff", "default"]
        report = wait_report(
            worker, lambda r: r.counters.succeeded >= 4 and any(p.retrying for p in r.partitions), reader
        )
    finally:
        reader.close()
    assert report.group_id == kafka_env.group_id
    assert report.counters.failed >= 1 and report.counters.retried >= 1
    assert report.queue_counters["default"].succeeded == 3
    assert report.queue_counters["single"].succeeded == 1
    by_queue = {(p.queue, p.partition): p for p in report.partitions}
    retrying_partition = by_queue[("default", 1)]
    assert retrying_partition.paused and not retrying_partition.held
    (retry,) = retrying_partition.retrying
    assert (retry.job, retry.job_id, retry.failures) == ("tests.jobs.FailingJob", failing.job_id, 1)
    assert retry.error == "RuntimeError: planned failure 1 of 5"
    assert retry.retry_at is not None and retry.retry_at > report.reported_at
    assert by_queue[("default", 0)].committed == 3
    assert by_queue[("default", 0)].end == 3 and by_queue[("default", 0)].lag == 0
    assert retrying_partition.committed in (None, 0)
    (error,) = [e for e in report.recent_errors if e.job_id == failing.job_id]
    assert (error.outcome, error.offset) == ("retry", 0)
    assert report.rss_bytes is not None and report.rss_bytes > 10_000_000

    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    final = report_of(worker)
    assert final is not None and final.state() is WorkerState.STOPPED


@pytest.mark.kafka_jobs_overrides(FAST_REPORTS)
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_is_shown_as_gone(kafka_env: KafkaEnv) -> None:
    worker = kafka_env.start_worker()
    wait_report(worker, lambda r: r.state() is WorkerState.RUNNING)
    worker.kill()
    wait_report(worker, lambda r: r.state() is WorkerState.GONE, timeout=10)
