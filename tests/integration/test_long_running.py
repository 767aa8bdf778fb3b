"""A job may run far longer than max.poll.interval.ms: the listener keeps polling and the worker its partitions."""

from __future__ import annotations

import pytest

from kafka_jobs.producer import get_producer
from tests.integration.conftest import KafkaEnv
from tests.jobs import SlowJob, read_records

pytestmark = pytest.mark.integration

MAX_POLL_INTERVAL = 1.0  # librdkafka refuses a value below session.timeout.ms


@pytest.mark.kafka_jobs_overrides(
    {
        "CONSUMER": {
            "session.timeout.ms": int(MAX_POLL_INTERVAL * 1000),
            "heartbeat.interval.ms": 250,
            "max.poll.interval.ms": int(MAX_POLL_INTERVAL * 1000),
            "topic.metadata.refresh.interval.ms": 2000,
        }
    }
)
def test_job_running_three_times_max_poll_interval_runs_once_without_a_rebalance(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    SlowJob.perform_later(log, "long", 3 * MAX_POLL_INTERVAL)
    SlowJob.perform_later(log, "next", 0.0)  # behind it in the same partition
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--queues", "single", timeout=60)

    output = worker.output()
    assert worker.proc.returncode == 0, output
    records = read_records(log)
    assert [(r["event"], r["tag"]) for r in records] == [
        ("started", "long"),
        ("finished", "long"),
        ("started", "next"),
        ("finished", "next"),
    ]
    # The consumer never left the group: one assignment, no revocation or loss before the final shutdown.
    assert output.count("Assigned partitions") == 1, output
    assert "maximum poll interval" not in output.lower()
    assert "Lost partitions" not in output
    assert output.count("Revoked partitions") == 1  # only when the burst worker closes
    assert output.index("Revoked partitions") > output.index("Stopping: --burst")
    assert kafka_env.committed("single") == 2
