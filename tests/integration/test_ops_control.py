"""Pausing and resuming a queue through the commands topic, with real workers (confirmed in their reports)."""

from __future__ import annotations

import signal

import pytest

from kafka_jobs.exceptions import UnroutedQueue
from kafka_jobs.ops import pause_queue, read_queue_commands, resume_queue
from kafka_jobs.producer import get_producer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.integration.test_ops_reports import wait_report
from tests.jobs import RecordJob, SeqJob, read_records

pytestmark = pytest.mark.integration


def seqs(log: str) -> list[int]:
    return sorted(r["seq"] for r in read_records(log) if "seq" in r)


@pytest.mark.kafka_jobs_overrides({"REPORT_INTERVAL": 0.5})
@pytest.mark.django_db(transaction=True)
def test_paused_queue_runs_nothing_even_in_a_worker_started_later_until_resumed(kafka_env: KafkaEnv) -> None:
    single, other = kafka_env.log_file("single.log"), kafka_env.log_file("other.log")
    worker = kafka_env.start_worker()
    command = pause_queue("single", by="ops-test")
    assert read_queue_commands()["single"] == command
    report = wait_report(
        worker, lambda r: r.commands.get("single") == command.id and any(p.queue == "single" for p in r.partitions)
    )
    assert report.paused_queues == ["single"]
    assert [p.held for p in report.partitions if p.queue == "single"] == [True]
    assert not any(p.held for p in report.partitions if p.queue != "single")

    for seq in range(3):
        SeqJob.perform_later(single, seq)
    RecordJob.perform_later(other, "after")
    get_producer().flush(10)
    wait_for(lambda: read_records(other), timeout=30, message="the unpaused queue did not run")
    wait_report(worker, lambda r: r.counters.succeeded == 1)
    assert seqs(single) == []

    # A worker started while the queue is paused honours it from its first job.
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    later = kafka_env.start_worker()
    report = wait_report(later, lambda r: any(p.queue == "single" for p in r.partitions))
    assert report.paused_queues == ["single"] and report.commands["single"] == command.id
    RecordJob.perform_later(other, "later")
    get_producer().flush(10)
    wait_for(lambda: len(read_records(other)) == 2, timeout=30, message="the unpaused queue did not run")
    assert seqs(single) == []

    resumed = resume_queue("single", by="ops-test")
    wait_for(lambda: seqs(single) == [0, 1, 2], timeout=30, message=lambda: later.output()[-3000:])
    report = wait_report(later, lambda r: r.commands.get("single") == resumed.id)
    assert report.paused_queues == []
    assert not any(p.held for p in report.partitions)


@pytest.mark.django_db(transaction=True)
def test_pausing_an_unrouted_queue_is_refused(kafka_env: KafkaEnv) -> None:
    with pytest.raises(UnroutedQueue, match="'nope' is not routed"):
        pause_queue("nope")
