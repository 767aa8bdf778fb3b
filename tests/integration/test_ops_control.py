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


@pytest.mark.kafka_jobs_overrides({"REPORT_INTERVAL": 0.5})
@pytest.mark.django_db(transaction=True)
def test_kafkaqueues_and_kafkaworkers_commands(kafka_env: KafkaEnv) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    def run(*args: str) -> str:
        out = StringIO()
        call_command(*args, stdout=out)
        return out.getvalue()

    worker = kafka_env.start_worker()
    assert "Asked every worker to pause queue 'single'" in run("kafkaqueues", "pause", "single", "--by", "ops")
    command = read_queue_commands()["single"]
    assert (command.action, command.by) == ("pause", "ops")
    wait_report(worker, lambda r: r.commands.get("single") == command.id and any(p.held for p in r.partitions))

    listing = {line.split("\t")[0]: line.split("\t") for line in run("kafkaqueues", "list").splitlines()[1:]}
    assert listing["single"][2].startswith("paused (pause by ops at ")
    assert listing["single"][3:] == ["1", "-"]  # confirmed by the one running worker, none pending
    assert listing["default"][2:] == ["running", "-", "-"]
    workers = run("kafkaworkers")
    assert f":{worker.pid}:" in workers and "running" in workers
    assert f"{kafka_env.topic('single')}/0" in workers and "held paused" in workers

    run("kafkaqueues", "resume", "single")
    assert read_queue_commands()["single"].action == "resume"
    with pytest.raises(CommandError, match="needs the queue's name"):
        run("kafkaqueues", "pause")
    with pytest.raises(CommandError, match="'nope' is not routed"):
        run("kafkaqueues", "pause", "nope")
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert "No running workers." in run("kafkaworkers")
    assert f":{worker.pid}:" in run("kafkaworkers", "--all")
