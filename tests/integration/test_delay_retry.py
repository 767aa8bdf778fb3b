"""retry="delay": a failing job is retried through the delay tiers while its partition keeps flowing."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_jobs import perform_all_later
from kafka_jobs.producer import get_producer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.integration.test_deadletter import kafkadlq
from tests.integration.test_failures import dead_letters, headers_of
from tests.jobs import DelayRetryJob, read_records_so_far

pytestmark = pytest.mark.integration


def _runs(log: str, tag: str) -> list[dict[str, Any]]:
    return [r for r in read_records_so_far(log) if r.get("event") == "ran" and r.get("tag") == tag]


def test_a_failing_job_does_not_hold_its_partition_and_is_dead_lettered_after_its_retries(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    kafka_env.start_worker("--queues", "delayretry")
    DelayRetryJob.perform_later(log, "warm-up")
    get_producer().flush(10)
    wait_for(lambda: _runs(log, "warm-up"), 60, message="the worker did not start")

    failing = DelayRetryJob(log, "failing", fail=True)
    behind = [DelayRetryJob(log, f"ok-{n}") for n in range(20)]
    perform_all_later([failing, *behind])  # one partition: the 20 are behind the failing job
    get_producer().flush(10)

    wait_for(lambda: len(dead_letters(kafka_env, "delayretry")) == 1, 60, message="nothing was dead-lettered")
    runs = _runs(log, "failing")
    assert [r["executions"] for r in runs] == [1, 2, 3]  # max_retries=2: three runs, counted across messages
    assert {r["job_id"] for r in runs} == {failing.job_id}
    assert all(r["topic"] == kafka_env.topic("delayretry") for r in runs)
    assert runs[1]["at"] - runs[0]["at"] >= 1.0  # the backoff, through a tier
    finished = [run for job in behind for run in _runs(log, job.args[1])]
    assert len(finished) == 20
    assert max(r["at"] for r in finished) < runs[1]["at"]  # none waited for the failing job's retry
    [letter] = dead_letters(kafka_env, "delayretry")
    headers = headers_of(letter)
    assert headers["kj-dlq-attempts"] == "3"
    assert headers["kj-dlq-source-topic"] == kafka_env.topic("delayretry")
    assert headers["kj-id"] == failing.job_id
    assert not any(key.startswith("kj-delay-") for key in headers)

    # Replayed, it gets its retries again (the count in the message starts afresh), then is dead-lettered again.
    assert "1 message(s) replayed" in kafkadlq("replay", "--queue", "delayretry", "--all")
    wait_for(lambda: len(dead_letters(kafka_env, "delayretry")) == 2, 60, message="the replay was not dead-lettered")
    assert [r["executions"] for r in _runs(log, "failing")] == [1, 2, 3, 1, 2, 3]
    assert headers_of(dead_letters(kafka_env, "delayretry")[1])["kj-dlq-attempts"] == "3"
