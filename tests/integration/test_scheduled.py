"""Jobs scheduled with set(wait=...) / set(wait_until=...) run in the worker when due, not before."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from kafka_jobs.producer import get_producer
from tests.integration.conftest import KafkaEnv
from tests.jobs import TraceJob, read_records

pytestmark = pytest.mark.integration


def test_scheduled_job_runs_when_due_while_other_partitions_run_at_once(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    enqueued_at = time.time()
    later = TraceJob.set(partition=0, wait=2.0).perform_later(log, "later")
    TraceJob.set(partition=1).perform_later(log, "now")
    TraceJob.set(partition=2, wait_until=timezone.now() - dt.timedelta(hours=1)).perform_later(log, "overdue")
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--concurrency", "2", "--queues", "wide")

    assert worker.proc.returncode == 0, worker.output()
    started = {r["tag"]: r for r in read_records(log) if r["event"] == "started"}
    assert set(started) == {"later", "now", "overdue"}  # each ran once
    assert started["later"]["at"] >= later.scheduled_at.timestamp() >= enqueued_at + 2.0
    assert started["now"]["at"] < started["later"]["at"]
    assert started["overdue"]["at"] < started["later"]["at"]  # a time in the past runs now
