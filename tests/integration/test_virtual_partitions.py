"""Virtual partitions: one partition's jobs run in parallel lanes by key; equal keys in order; exact commits."""

from __future__ import annotations

import signal
from collections import Counter, defaultdict
from typing import Any

import pytest

from kafka_jobs import perform_all_later
from kafka_jobs.producer import get_producer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.jobs import VirtualJob, read_records, read_records_so_far

pytestmark = pytest.mark.integration

LANES = 4  # max_lanes of the "virtual" route in tests/kafka_routes.py; keys are ints, one lane each


def seqs(log: str, event: str) -> list[int]:
    """Return the ``seq`` of the records of ``event``, in log order."""
    return [r["seq"] for r in read_records_so_far(log) if r["event"] == event]


def intervals(records: list[dict[str, Any]]) -> list[tuple[int, float, float]]:
    """Return (key, start, end) of every run, a failed run ending at its failure."""
    started: dict[tuple[str, int], dict[str, Any]] = {}
    result = []
    counts: Counter[str] = Counter()
    for r in records:
        if r["event"] == "started":
            counts[r["job_id"]] += 1
            started[(r["job_id"], counts[r["job_id"]])] = r
        else:
            start = started[(r["job_id"], counts[r["job_id"]])]
            result.append((r["key"], start["at"], r["at"]))
    return result


def test_every_job_runs_once_except_the_failed_one_which_alone_is_retried(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    jobs = [VirtualJob(log, seq % LANES, seq, 0.01, seq == 95) for seq in range(100)]
    perform_all_later(jobs)
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--concurrency", "4", "--queues", "virtual")

    assert worker.proc.returncode == 0, worker.output()
    records = read_records(log)
    starts = Counter(r["seq"] for r in records if r["event"] == "started")
    assert starts == {seq: 2 if seq == 95 else 1 for seq in range(100)}
    assert [r["seq"] for r in records if r["event"] == "failed"] == [95]
    assert sorted(r["seq"] for r in records if r["event"] == "finished") == list(range(100))
    by_key: dict[int, list[int]] = defaultdict(list)
    for r in records:
        if r["event"] == "finished":
            by_key[r["key"]].append(r["seq"])
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), key  # equal keys in order: 99 waited for 95's retry
    # Equal keys never overlapped; different keys did.
    runs = intervals(records)
    for i, (key_a, start_a, end_a) in enumerate(runs):
        for key_b, start_b, end_b in runs[i + 1 :]:
            if key_a == key_b:
                assert end_a <= start_b or end_b <= start_a
    assert any(
        key_a != key_b and start_a < end_b and start_b < end_a
        for i, (key_a, start_a, end_a) in enumerate(runs)
        for key_b, start_b, end_b in runs[i + 1 :]
    )
    assert kafka_env.committed("virtual") == 100


def test_different_virtual_keys_of_one_partition_run_in_parallel(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    perform_all_later([VirtualJob(log, key, seq, 0.4) for seq in range(2) for key in (0, 1)])
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--concurrency", "2", "--queues", "virtual")

    assert worker.proc.returncode == 0, worker.output()
    runs = intervals(read_records(log))
    assert len(runs) == 4
    key0 = [run for run in runs if run[0] == 0]
    key1 = [run for run in runs if run[0] == 1]
    # The partition's jobs took about half the time they would one after the other.
    assert all(any(a[1] < b[2] and b[1] < a[2] for b in key1) for a in key0)
    assert kafka_env.committed("virtual") == 4


@pytest.mark.kafka_jobs_overrides({"BACKOFF": {"INITIAL": 60.0, "MAX": 60.0}})
def test_commit_stays_below_an_unfinished_job_while_later_lanes_finish(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    perform_all_later([VirtualJob(log, seq % LANES, seq, 0.0, seq == 95) for seq in range(100)])
    get_producer().flush(10)

    # 95 fails and waits a minute to retry; 99 shares its lane and waits too; every other job finishes.
    first = kafka_env.start_worker("--concurrency", "4", "--queues", "virtual")
    expected = [seq for seq in range(100) if seq not in (95, 99)]
    wait_for(
        lambda: sorted(seqs(log, "finished")) == expected and seqs(log, "failed") == [95],
        30,
        message=lambda: f"finished {sorted(seqs(log, 'finished'))}, failed {seqs(log, 'failed')}",
    )
    first.send(signal.SIGTERM)
    assert first.wait(30) == 0, first.output()
    assert kafka_env.committed("virtual") == 95  # not past 95, although 96-98 finished

    second = kafka_env.run_worker("--burst", "--queues", "virtual")

    assert second.proc.returncode == 0, second.output()
    rerun = [r["seq"] for r in read_records(log) if r["event"] == "started" and r["pid"] == second.pid]
    assert sorted(rerun) == [95, 96, 97, 98, 99]  # at least once: what finished after the commit point runs again
    assert kafka_env.committed("virtual") == 100


def test_a_failing_key_function_runs_the_job_in_a_lane_of_its_own(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    VirtualJob.perform_later(log, [1, 2], 0)  # the key function returns a list: unhashable
    VirtualJob.perform_later(log, 1, 1)
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--queues", "virtual")

    output = worker.output()
    assert worker.proc.returncode == 0, output
    assert sorted(seqs(log, "finished")) == [0, 1]
    assert "the virtual_partitions key of route 'virtual' failed (TypeError(" in output
    assert kafka_env.committed("virtual") == 2
