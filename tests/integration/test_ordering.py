"""Ordered jobs: a partitioner key sends equal keys to one partition, where they run in enqueue order."""

from __future__ import annotations

from collections import defaultdict

import pytest

from kafka_jobs import perform_all_later
from kafka_jobs.producer import get_producer
from tests.integration.conftest import KafkaEnv
from tests.jobs import OrderedJob, PartitionedJob, read_records

pytestmark = pytest.mark.integration

KEYS = [f"customer-{n}" for n in range(6)]


def test_jobs_with_equal_keys_share_a_partition_and_run_in_enqueue_order(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    per_key = 15
    for seq in range(per_key):
        if seq % 2:
            for key in KEYS:
                OrderedJob.perform_later(log, key, seq)
        else:  # bulk enqueue goes through the same partitioner
            perform_all_later([OrderedJob(log, key, seq) for key in KEYS])
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--concurrency", "4", "--queues", "wide")

    assert worker.proc.returncode == 0, worker.output()
    runs: dict[str, list[dict]] = defaultdict(list)
    for r in read_records(log):
        if r["event"] == "started":
            runs[r["key"]].append(r)  # the log is appended in the order jobs started
    assert sorted(runs) == KEYS
    for key, key_runs in runs.items():
        assert {r["message_key"] for r in key_runs} == {key}
        assert len({r["partition"] for r in key_runs}) == 1, key
        assert [r["seq"] for r in key_runs] == list(range(per_key)), key
        assert [r["offset"] for r in key_runs] == sorted(r["offset"] for r in key_runs)
    # The keys are spread over the topic (so ordering did not come from a single partition).
    assert len({key_runs[0]["partition"] for key_runs in runs.values()}) > 1


def test_partition_key_type_partition_and_set_overrides_choose_the_partition(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    for partition in range(6):
        PartitionedJob.perform_later(log, partition, partition)  # partitioner value used as the partition
    PartitionedJob.set(partition_key=4).perform_later(log, 1, 100)  # set(partition_key=) replaces the partitioner
    OrderedJob.set(partition_key="override").perform_later(log, "customer-0", 101)  # a message key override
    OrderedJob.set(partition=5).perform_later(log, "customer-0", 102)  # an explicit partition wins over the key
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst", "--queues", "wide")

    assert worker.proc.returncode == 0, worker.output()
    finished = {r["seq"]: r for r in read_records(log) if r["event"] == "finished"}
    assert sorted(finished) == [0, 1, 2, 3, 4, 5, 100, 101, 102]
    for partition in range(6):
        assert finished[partition]["partition"] == partition
        assert finished[partition]["message_key"] is None  # sent to the partition, not as a key
    assert finished[100]["partition"] == 4
    assert finished[101]["message_key"] == "override"
    assert finished[102]["partition"] == 5
    assert finished[102]["message_key"] == "customer-0"
