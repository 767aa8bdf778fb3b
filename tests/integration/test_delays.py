"""Delayed jobs wait in delay tiers, never in their queue: not before their time, never lost, never in the way."""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import time
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from django.core.management import call_command

from kafka_jobs import perform_all_later
from kafka_jobs.delays.messages import epoch_ms
from kafka_jobs.producer import get_producer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.jobs import DelayedJob, DelayedKeyJob, read_records_so_far

pytestmark = pytest.mark.integration

# Generous: the machine is shared and a worker may take seconds to join its groups. Precision is the bench's job.
LATE_BOUND = 15.0


def _ran(log: str) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for entry in read_records_so_far(log):
        if entry.get("event") == "ran":
            runs.setdefault(entry["job_id"], []).append(entry)
    return runs


def _warm_up(kafka_env: KafkaEnv, log: str) -> None:
    """Wait until the worker runs jobs and its forwarder forwards (both groups joined)."""
    job = DelayedJob.set(wait=0.1).perform_later(log, "warm-up")
    get_producer().flush(10)
    wait_for(lambda: job.job_id in _ran(log), 60, message="the warm-up delayed job did not run")


def test_delayed_jobs_run_when_due_never_before_with_their_id_key_and_partition(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    worker = kafka_env.start_worker("--queues", "delayed")
    _warm_up(kafka_env, log)

    enqueued = []
    for number in range(40):
        wait = 0.2 + (number % 20) * 0.35  # 0.2 s .. 6.9 s: the 1 s and 3 s tiers, and several hops
        if number % 3 == 0:
            job = DelayedKeyJob.set(wait=wait).perform_later(log, number, f"key-{number % 4}")
        elif number % 3 == 1:
            job = DelayedJob.set(wait=wait, partition=number % 2).perform_later(log, number)
        else:
            job = DelayedJob.set(wait_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)).perform_later(
                log, number
            )
        enqueued.append(job)
    get_producer().flush(10)

    wait_for(lambda: len(_ran(log)) >= len(enqueued) + 1, 60, message=lambda: f"{len(_ran(log))} ran")
    runs = _ran(log)
    for job in enqueued:
        [run] = runs[job.job_id]  # ran once, under the id perform_later returned
        assert job.scheduled_at is not None
        assert run["at"] >= job.scheduled_at.timestamp(), (
            f"job {run['tag']} ran {job.scheduled_at.timestamp() - run['at']:.3f}s early"
        )
        assert run["at"] <= job.scheduled_at.timestamp() + LATE_BOUND
        assert run["topic"] == kafka_env.topic("delayed")  # from its queue, not from a delay tier
        assert run["executions"] == 1
        if isinstance(job, DelayedKeyJob):
            assert run["message_key"] == job.args[2]  # the key survived the tiers
        elif job.partition is not None:
            assert run["partition"] == job.partition  # so did an explicit partition
    # The worker would hold a job that reached its queue early (a safety net): check the forwarder itself.
    arrivals = _queue_arrivals(kafka_env, "delayed", {job.job_id for job in enqueued})
    for job in enqueued:
        [arrived_ms] = arrivals[job.job_id]  # forwarded once
        assert job.scheduled_at is not None
        assert arrived_ms >= epoch_ms(job.scheduled_at), f"forwarded {epoch_ms(job.scheduled_at) - arrived_ms} ms early"
    worker.send(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()


def _queue_arrivals(kafka_env: KafkaEnv, queue: str, job_ids: set[str], partitions: int = 2) -> dict[str, list[int]]:
    """Return job id -> the produce timestamps (ms) of its messages in the queue topic (read to the end)."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_env.bootstrap,
            "group.id": f"{kafka_env.group_id}.reader",
            "enable.partition.eof": True,
        }
    )
    arrivals: dict[str, list[int]] = {}
    try:
        consumer.assign([TopicPartition(kafka_env.topic(queue), p, OFFSET_BEGINNING) for p in range(partitions)])
        ends: set[int] = set()
        while len(ends) < partitions:
            message = consumer.poll(10)
            assert message is not None, "no end of the queue topic within 10 s"
            if message.error() is not None:
                ends.add(message.partition())
                continue
            job_id = dict(message.headers() or [])["kj-id"].decode()
            if job_id in job_ids:
                arrivals.setdefault(job_id, []).append(message.timestamp()[1])
    finally:
        consumer.close()
    return arrivals


@pytest.mark.kafka_jobs_overrides({"DELAY_TIERS": [1, 600]})
def test_immediate_jobs_are_not_slowed_by_thousands_of_delayed_ones_on_the_same_partitions(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    kafka_env.start_worker("--queues", "delayed")
    _warm_up(kafka_env, log)
    delayed = [DelayedJob.set(wait=900).build(log, f"delayed-{n}") for n in range(3000)]
    perform_all_later(delayed)
    get_producer().flush(30)

    started = time.time()
    immediate = [DelayedJob.perform_later(log, f"now-{n}") for n in range(200)]
    get_producer().flush(10)

    wait_for(
        lambda: all(job.job_id in _ran(log) for job in immediate),
        60,
        message=lambda: f"{sum(job.job_id in _ran(log) for job in immediate)}/200 immediate jobs ran",
    )
    runs = _ran(log)
    assert max(runs[job.job_id][0]["at"] for job in immediate) - started < LATE_BOUND
    assert not any(job.job_id in runs for job in delayed)  # all 3000 still wait in the 600 s tier
    assert _waiting_in(kafka_env, kafka_env.prefix + "kafka_jobs.delay.10m") == 3000
    report = _kafkascheduled()
    [tier] = [t for t in report["tiers"] if t["topic"] == kafka_env.prefix + "kafka_jobs.delay.10m"]
    assert tier["waiting"] == 3000
    assert 500_000 < tier["next_release_ms"] - time.time() * 1000 <= 600_000


def _kafkascheduled() -> dict[str, Any]:
    out = io.StringIO()
    call_command("kafkascheduled", "--json", stdout=out)
    return json.loads(out.getvalue())


def _waiting_in(kafka_env: KafkaEnv, topic: str, partitions: int = 2) -> int:
    """Count the messages of ``topic`` past the forwarders' committed offsets (by reading them)."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_env.bootstrap,
            "group.id": kafka_env.group_id + ".delays",
            "enable.partition.eof": True,
        }
    )
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        consumer.assign([TopicPartition(topic, tp.partition, max(tp.offset, OFFSET_BEGINNING)) for tp in committed])
        count, ends = 0, set()
        while len(ends) < partitions:
            message = consumer.poll(10)
            assert message is not None, f"no end of {topic} within 10 s"
            if message.error() is None:
                count += 1
            else:
                ends.add(message.partition())
        return count
    finally:
        consumer.close()


def test_a_worker_killed_while_jobs_wait_in_tiers_loses_none(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    first = kafka_env.start_worker("--queues", "delayed")
    _warm_up(kafka_env, log)
    jobs = [DelayedJob.set(wait=0.5 + (n % 30) * 0.2).build(log, n) for n in range(300)]  # 0.5 s .. 6.3 s
    perform_all_later(jobs)
    get_producer().flush(10)
    wait_for(lambda: len(_ran(log)) >= 60, 60, message="the first worker ran too few delayed jobs")

    first.kill()  # SIGKILL: forwarded-but-uncommitted jobs are forwarded again, none is lost
    kafka_env.start_worker("--queues", "delayed")

    wait_for(
        lambda: all(job.job_id in _ran(log) for job in jobs),
        90,
        message=lambda: f"{sum(job.job_id in _ran(log) for job in jobs)}/300 delayed jobs ran",
    )
    runs = _ran(log)
    for job in jobs:
        assert job.scheduled_at is not None
        assert all(run["at"] >= job.scheduled_at.timestamp() for run in runs[job.job_id])


def test_forwarding_runs_in_a_scheduling_only_worker_beside_a_jobs_only_worker(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    jobs_only = kafka_env.start_worker("--queues", "delayed", "--no-scheduling")
    scheduling_only = kafka_env.start_worker("--scheduling-only")
    _warm_up(kafka_env, log)
    job = DelayedJob.set(wait=1.5).perform_later(log, "later")
    get_producer().flush(10)

    wait_for(lambda: job.job_id in _ran(log), 30, message="the delayed job did not run")
    assert job.scheduled_at is not None
    assert _ran(log)[job.job_id][0]["at"] >= job.scheduled_at.timestamp()
    assert _ran(log)[job.job_id][0]["pid"] == jobs_only.pid
    for worker in (jobs_only, scheduling_only):
        worker.send(signal.SIGTERM)
        assert worker.wait() == 0, worker.output()
    assert "Delay forwarder started" not in jobs_only.output()


def test_kafkatopics_creates_and_lists_the_tier_topics_and_the_worker_refuses_to_start_without_one(
    kafka_env: KafkaEnv,
) -> None:
    out = io.StringIO()
    call_command("kafkatopics", "list", stdout=out)
    listing = out.getvalue()
    for tier in ("1s", "3s"):  # the test ladder, created by the fixture with the routed topics
        assert f"{kafka_env.prefix}kafka_jobs.delay.{tier}\twanted 2 partitions\t2 partitions" in listing
    assert "kafka_jobs.schedules" not in listing  # no recurring jobs declared here

    overrides = json.dumps({"DELAY_TIERS": [1, 3, 7]})
    worker = kafka_env.start_worker("--queues", "delayed", KAFKA_JOBS_TEST_OVERRIDES=overrides)
    assert worker.wait(60) == 1
    assert f"{kafka_env.prefix}kafka_jobs.delay.7s do not exist" in worker.output()
