"""Jobs scheduled with set(wait=...) / set(wait_until=...) run when due, not before.

Delayed jobs wait in the delay tiers (more in tests/integration/test_delays.py). The second test covers the
executor's safety net: a job written straight to its queue topic before it is due (e.g. by an older client
that had no tiers) waits there, without holding up other partitions.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from kafka_jobs.producer import OutgoingMessage, get_producer
from kafka_jobs.serializer import get_serializer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.jobs import TraceJob, read_records, read_records_so_far

pytestmark = pytest.mark.integration


def test_scheduled_job_runs_when_due_while_other_partitions_run_at_once(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    # The worker runs before the jobs are enqueued: a worker still joining its group when "later" falls
    # due would start all three together and prove nothing about their order.
    worker = kafka_env.start_worker("--max-jobs", "4", "--concurrency", "2", "--queues", "wide")
    TraceJob.set(partition=3).perform_later(log, "probe")
    get_producer().flush(10)
    wait_for(lambda: read_records_so_far(log), timeout=60, message=lambda: f"the probe never ran:\n{worker.output()}")

    enqueued_at = time.time()
    later = TraceJob.set(partition=0, wait=2.0).perform_later(log, "later")
    TraceJob.set(partition=1).perform_later(log, "now")
    TraceJob.set(partition=2, wait_until=timezone.now() - dt.timedelta(hours=1)).perform_later(log, "overdue")
    get_producer().flush(10)

    assert worker.wait(60) == 0, worker.output()
    started = {r["tag"]: r for r in read_records(log) if r["event"] == "started"}
    assert set(started) == {"probe", "later", "now", "overdue"}  # each ran once
    assert started["later"]["at"] >= later.scheduled_at.timestamp() >= enqueued_at + 2.0
    assert started["now"]["at"] < started["later"]["at"]
    assert started["overdue"]["at"] < started["later"]["at"]  # a time in the past runs now


def _started(log: str) -> dict[str, dict]:
    return {r["tag"]: r for r in read_records_so_far(log) if r["event"] == "started"}


def test_an_early_job_in_its_queue_runs_when_due_while_other_partitions_run_at_once(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    kafka_env.start_worker("--concurrency", "2", "--queues", "wide")
    TraceJob.set(partition=3).perform_later(log, "warm-up")
    get_producer().flush(10)
    wait_for(lambda: "warm-up" in _started(log), 60, message="the worker did not start")

    early = TraceJob(log, "early")
    early.scheduled_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    sent_at = time.time()
    get_producer().produce(  # as an old client would: to the queue topic, not to a delay tier
        [OutgoingMessage(kafka_env.topic("wide"), get_serializer().dumps(early), partition=0)], sync=True
    )
    TraceJob.set(partition=1).perform_later(log, "now")
    get_producer().flush(10)

    wait_for(lambda: {"early", "now"} <= set(_started(log)), 30, message=lambda: f"ran: {sorted(_started(log))}")
    started = _started(log)
    assert started["early"]["at"] >= early.scheduled_at.timestamp() >= sent_at + 2.9
    assert started["now"]["at"] < early.scheduled_at.timestamp()  # another partition did not wait for it
