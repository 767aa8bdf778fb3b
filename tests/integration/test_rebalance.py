"""Several worker processes in one group: partitions move between them as workers stop, die and join.

Every job records its start and end with the worker's pid, so the assertions are exact: a job runs twice
only if the killed worker ran it after its partition's last commit (in flight, or finished but not yet
committed); a worker stopped with SIGTERM finishes and commits what it started, and nothing else repeats.
"""

from __future__ import annotations

import re
import signal
from collections import Counter, defaultdict
from typing import Any

import pytest
from django.conf import settings

from kafka_jobs import perform_all_later
from kafka_jobs.producer import get_producer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv, WorkerProcess
from tests.jobs import TraceJob, read_records, read_records_so_far

pytestmark = pytest.mark.integration

PARTITIONS = 6  # the "wide" route
PER_PARTITION = 50
JOBS = PARTITIONS * PER_PARTITION
SECONDS = 0.03  # per job: long enough that jobs are in flight whenever a worker is stopped or killed
TEST_CONSUMER = settings.KAFKA_JOBS["CONSUMER"]  # the Tansu-friendly timeouts of tests/settings.py
ASSIGNED_SOME = re.compile(r"^Assigned partitions: (?!none$)", re.MULTILINE)


def enqueue(log: str) -> None:
    """Enqueue JOBS trace jobs, PER_PARTITION on each partition, tagged 0..JOBS-1."""
    jobs = [TraceJob.set(partition=seq % PARTITIONS).build(log, seq, SECONDS) for seq in range(JOBS)]
    assert perform_all_later(jobs) == JOBS
    get_producer().flush(10)


def starts_by_job(log: str) -> dict[int, list[dict[str, Any]]]:
    """Return each job's start records, in the order they were written."""
    starts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in read_records(log):
        if r["event"] == "started":
            starts[r["tag"]].append(r)
    return starts


def each_ran_some(log: str, workers: list[WorkerProcess], count: int = 12) -> bool:
    """True once every worker finished ``count`` jobs (so each owns partitions and has committed some)."""
    done = Counter(r["pid"] for r in read_records_so_far(log) if r["event"] == "finished")
    return all(done[worker.pid] >= count for worker in workers)


def all_finished(log: str) -> bool:
    return len({r["tag"] for r in read_records_so_far(log) if r["event"] == "finished"}) == JOBS


def start_workers(env: KafkaEnv, count: int) -> list[WorkerProcess]:
    """Start ``count`` workers and return once each owns partitions.

    The jobs are enqueued after this: on a busy machine a worker that joined late would otherwise find the
    others had run most of the jobs, and run too few for the test to stop or kill it mid-run.
    """
    workers = [env.start_worker("--queues", "wide", "--concurrency", "2") for _ in range(count)]
    wait_for(
        lambda: all(ASSIGNED_SOME.search(worker.output()) for worker in workers),
        60,
        message=lambda: "not every worker was assigned partitions:\n" + "\n".join(w.output() for w in workers),
    )
    return workers


def stop(worker: WorkerProcess) -> None:
    """SIGTERM a worker and check it shut down cleanly."""
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()[-3000:]
    assert "Worker stopped (received SIGTERM)" in worker.output()


def test_two_workers_share_the_partitions_and_a_graceful_stop_repeats_nothing(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    first, second = start_workers(kafka_env, 2)
    enqueue(log)
    wait_for(lambda: each_ran_some(log, [first, second]), 30, message="both workers should run jobs")

    stop(first)  # its partitions move to the second worker mid-run
    wait_for(lambda: all_finished(log), 60, message=lambda: f"{len(read_records_so_far(log))} records")
    stop(second)

    starts = starts_by_job(log)
    assert sorted(starts) == list(range(JOBS))
    assert [seq for seq, runs in starts.items() if len(runs) > 1] == []  # exactly once
    assert {runs[0]["partition"] for runs in starts.values()} == set(range(PARTITIONS))
    assert kafka_env.committed_offsets("wide", PARTITIONS) == [PER_PARTITION] * PARTITIONS


@pytest.mark.parametrize(
    "assignor",
    [
        pytest.param(
            "eager",  # librdkafka's default "range,roundrobin": every rebalance revokes all
            marks=pytest.mark.kafka_jobs_overrides(
                {"CONSUMER": {**TEST_CONSUMER, "partition.assignment.strategy": "range,roundrobin"}}
            ),
            id="eager",
        ),
        pytest.param("cooperative-sticky", id="cooperative"),  # the worker's default: only moved partitions
    ],
)
def test_three_workers_one_stopped_one_killed_only_the_killed_workers_uncommitted_jobs_run_twice(
    kafka_env: KafkaEnv, assignor: str
) -> None:
    log = kafka_env.log_file()
    killed, stopped, survivor = start_workers(kafka_env, 3)
    enqueue(log)
    wait_for(lambda: each_ran_some(log, [killed, stopped, survivor]), 30, message="all workers should run jobs")

    survivor_log_before = len(survivor.output())  # the joins may have moved its partitions: not counted
    killed.kill()  # SIGKILL: no commit, no leave; the group notices after the session timeout
    stop(stopped)
    wait_for(lambda: all_finished(log), 60, message=lambda: f"{len(read_records_so_far(log))} records")
    stop(survivor)

    records = read_records(log)
    starts = starts_by_job(log)
    finished = {(r["tag"], r["pid"]) for r in records if r["event"] == "finished"}
    assert sorted(starts) == list(range(JOBS))
    assert {seq for seq, _pid in finished} == set(range(JOBS))
    repeated = {seq: runs for seq, runs in starts.items() if len(runs) > 1}
    for seq, runs in repeated.items():
        # Twice at most: first in the killed worker, then in a live one.
        assert [run["pid"] == killed.pid for run in runs] == [True, False], (seq, runs)
    # Jobs the killed worker had in flight (started, not finished) all ran again.
    in_flight = {
        seq for seq, runs in starts.items() if runs[0]["pid"] == killed.pid and (seq, killed.pid) not in finished
    }
    assert in_flight <= set(repeated)
    # Per partition, the repeated jobs are exactly the killed worker's runs from its last commit on.
    for partition in range(PARTITIONS):
        killed_offsets = sorted(
            run["offset"]
            for runs in starts.values()
            for run in runs
            if run["pid"] == killed.pid and run["partition"] == partition
        )
        repeated_offsets = sorted(runs[0]["offset"] for runs in repeated.values() if runs[0]["partition"] == partition)
        if repeated_offsets:
            assert repeated_offsets == [o for o in killed_offsets if o >= repeated_offsets[0]], partition
    assert kafka_env.committed_offsets("wide", PARTITIONS) == [PER_PARTITION] * PARTITIONS
    if assignor == "cooperative-sticky":  # the departures only gave the survivor partitions: revoked once, at its stop
        assert survivor.output()[survivor_log_before:].count("Revoked partitions") == 1, survivor.output()
