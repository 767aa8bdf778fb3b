"""One worker process, several job threads: partitions run in parallel, each partition in order, memory bounded."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from kafka_jobs import perform_all_later
from kafka_jobs.producer import get_producer
from tests.integration.conftest import KafkaEnv
from tests.jobs import GATHER_PARTIES, GatherJob, RecordJob, TraceJob, WidgetJob, read_records
from tests.models import Widget

pytestmark = pytest.mark.integration


def runs_by_partition(log: str) -> dict[int, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Return (started, finished) record pairs of each job, per partition, in start order."""
    records = read_records(log)
    finished = {r["job_id"]: r for r in records if r["event"] == "finished"}
    pairs: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for start in sorted((r for r in records if r["event"] == "started"), key=lambda r: r["at"]):
        pairs.setdefault(start["partition"], []).append((start, finished[start["job_id"]]))
    return pairs


def overlap(a: tuple[dict[str, Any], dict[str, Any]], b: tuple[dict[str, Any], dict[str, Any]]) -> bool:
    """True if two (started, finished) runs were in progress at the same time."""
    return a[0]["at"] < b[1]["at"] and b[0]["at"] < a[1]["at"]


def enqueue_two_partitions(log: str, per_partition: int, seconds: float) -> None:
    for seq in range(per_partition):
        for partition in (0, 1):
            TraceJob.set(queue="default", partition=partition).perform_later(log, [partition, seq], seconds)
    get_producer().flush(10)


def test_partitions_run_in_parallel_and_each_partition_in_order_one_job_at_a_time(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    enqueue_two_partitions(log, per_partition=4, seconds=0.2)

    worker = kafka_env.run_worker("--burst", "--concurrency", "4", "--queues", "default")

    assert worker.proc.returncode == 0, worker.output()
    pairs = runs_by_partition(log)
    assert sorted(pairs) == [0, 1]
    for partition, runs in pairs.items():
        # Four threads, but one partition's jobs never overlap and run in offset (= enqueue) order.
        assert [start["tag"] for start, _ in runs] == [[partition, seq] for seq in range(4)]
        offsets = [start["offset"] for start, _ in runs]
        assert offsets == sorted(offsets) and len(set(offsets)) == 4
        for earlier, later in itertools.pairwise(runs):
            assert earlier[1]["at"] <= later[0]["at"], (earlier, later)
    # The two partitions ran at the same time, on different threads.
    assert any(overlap(a, b) for a in pairs[0] for b in pairs[1])
    assert kafka_env.committed_offsets("default", 2) == [4, 4]


def test_jobs_that_wait_run_on_four_threads_at_once(kafka_env: KafkaEnv) -> None:
    # Each GatherJob waits at a barrier until four of them run at once (bounded): quick jobs share a thread,
    # but jobs that wait must each get one while the others wait, up to --concurrency. Quick jobs on six
    # partitions come first (more lanes than threads, so the threads settle on as few as keep up); the
    # threads must then notice that jobs began to wait.
    log = kafka_env.log_file()
    rounds, quick, partitions = 3, 200, 6
    jobs = [
        GatherJob.set(partition=p).build(log, [p, -1 - seq], False) for seq in range(quick) for p in range(partitions)
    ]
    jobs += [GatherJob.set(partition=p).build(log, [p, seq]) for seq in range(rounds) for p in range(GATHER_PARTIES)]
    assert perform_all_later(jobs) == len(jobs)
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--concurrency", str(GATHER_PARTIES), "--queues", "wide")

    assert worker.proc.returncode == 0, worker.output()
    records = read_records(log)
    gathered = [r for r in records if r["met"] is not None]
    assert len(records) == len(jobs)
    assert len(gathered) == rounds * GATHER_PARTIES
    assert all(r["met"] for r in gathered), gathered
    assert len({r["thread"] for r in gathered}) == GATHER_PARTIES
    for p in range(partitions):
        tags = [r["tag"] for r in records if r["partition"] == p]
        waiting = [[p, seq] for seq in range(rounds)] if p < GATHER_PARTIES else []
        assert tags == [[p, -1 - seq] for seq in range(quick)] + waiting


def test_one_thread_runs_one_job_at_a_time(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    enqueue_two_partitions(log, per_partition=2, seconds=0.1)

    worker = kafka_env.run_worker("--burst", "--concurrency", "1", "--queues", "default")

    assert worker.proc.returncode == 0, worker.output()
    runs = [run for partition_runs in runs_by_partition(log).values() for run in partition_runs]
    assert len(runs) == 4
    assert not any(overlap(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :])


@pytest.mark.kafka_jobs_overrides({"MAX_BUFFERED_MESSAGES": 50})
def test_backlog_is_buffered_up_to_the_limit_per_partition_and_every_job_runs_once(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    jobs = 3000
    assert perform_all_later([RecordJob.set(partition=n % 2).build(log, n) for n in range(jobs)]) == jobs
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--concurrency", "2", "--queues", "default", "--log-level", "DEBUG")

    output = worker.output()
    assert worker.proc.returncode == 0, output[-3000:]
    runs = [r["args"][0] for r in read_records(log)]
    assert sorted(runs) == list(range(jobs))  # every job once: nothing skipped or repeated across pause/resume
    peak = int(re.search(r"at most (\d+) message\(s\) buffered per partition \(limit 50\)", output)[1])
    assert 0 < peak <= 50
    # The backlog was 30 times the buffer, and the peak above says it was never read ahead. Whether a partition
    # was also paused depends on timing: the poll loop fetches only the room left, and pauses a full partition
    # only when none of its jobs finished for a while (the fake-consumer tests in tests/unit cover both paths).
    assert kafka_env.committed_offsets("default", 2) == [jobs // 2, jobs // 2]


@pytest.mark.django_db(transaction=True)
def test_jobs_use_the_database_from_several_threads_with_a_fresh_connection_each(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    perform_all_later([WidgetJob.set(partition=n % 6).build(log, f"w{n}", 0.1) for n in range(12)])
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--concurrency", "3", "--queues", "wide")

    assert worker.proc.returncode == 0, worker.output()
    records = read_records(log)
    assert sorted(r["name"] for r in records) == sorted(f"w{n}" for n in range(12))
    assert len({r["thread"] for r in records}) > 1
    # close_old_connections() ran before each job, so no job inherited the previous job's connection.
    assert all(r["fresh_connection"] for r in records)
    assert sorted(Widget.objects.values_list("name", flat=True)) == sorted(f"w{n}" for n in range(12))
