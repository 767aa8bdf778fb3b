"""Rebalances with a fake consumer: revoked partitions finish and commit what runs, lost ones commit nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kafka_jobs.routing import active_job_topic
from kafka_jobs.worker import ExitCode
from kafka_jobs.worker.executor import Outcome, Verdict
from tests.helpers import wait_for
from tests.unit.fakes import FakeCluster, FakeExecutor, Gates, WorkerRun, settings

JOBS = active_job_topic("jobs", partitions=2)
WAIT = 10.0


def gated(gates: Gates, *names: bytes) -> FakeExecutor:
    def handler(message: Any, failures: int) -> Outcome:
        if message.value() in names:
            gates.wait(message.value())
        return Outcome(Verdict.DONE)

    return FakeExecutor(handler)


def start_with_slow_job(cluster: FakeCluster, gates: Gates, **options: Any) -> WorkerRun:
    """Start a worker whose partition 0 runs a, then blocks on "slow" with four jobs behind it."""
    cluster.produce("jobs", 0, b"a", b"slow", b"b", b"c", b"d", b"e")
    cluster.produce("jobs", 1, b"x")
    run = WorkerRun(cluster, [JOBS], gated(gates, b"slow"), **options).start()
    wait_for(lambda: gates.has_started(b"slow"), WAIT)
    return run


def test_revocation_drops_unstarted_jobs_waits_for_the_running_one_and_commits_it() -> None:
    cluster, gates = FakeCluster(), Gates()
    run = start_with_slow_job(cluster, gates)
    consumer = run.consumer
    assert consumer is not None
    # Partition 1's job commits on its own; once it has, the commit below is the last one (under load it
    # could otherwise come after the revocation's).
    wait_for(lambda: cluster.offset("jobs", 1) == 1, WAIT)

    consumer.revoke(("jobs", 0))
    state = run.worker.ledger.partitions[("jobs", 0)]
    wait_for(lambda: state.stopping, WAIT)  # on_revoke is waiting for "slow"
    assert state.buffered == 0 and state.running  # b..e dropped; "slow" runs on
    gates.open(b"slow")

    wait_for(lambda: ("jobs", 0) not in run.worker.ledger.partitions, WAIT)
    assert run.worker.executor.forgotten == [("jobs", 0)]  # decisions pending for it are dropped too
    assert cluster.offset("jobs", 0) == 2  # "slow" finished within REVOKE_TIMEOUT: committed synchronously
    assert consumer.commits[-1] == (False, [("jobs", 0, 2, None)])
    assert run.stop() == ExitCode.OK
    assert run.worker.threads.executor.runs("jobs", 0) == [0, 1]  # b..e were left to the next owner
    assert cluster.offset("jobs", 1) == 1  # the other partition was not disturbed


def test_a_job_still_running_at_revoke_timeout_is_not_committed(caplog: pytest.LogCaptureFixture) -> None:
    cluster, gates = FakeCluster(), Gates()
    run = start_with_slow_job(cluster, gates, settings=settings(revoke_timeout=0.1))
    wait_for(lambda: cluster.offset("jobs", 0) == 1, WAIT)
    assert run.consumer is not None

    with caplog.at_level(logging.WARNING, "kafka_jobs.worker"):
        run.consumer.revoke(("jobs", 0))
        wait_for(lambda: ("jobs", 0) not in run.worker.ledger.partitions, WAIT)
    gates.open(b"slow")

    assert run.stop() == ExitCode.OK
    assert cluster.offset("jobs", 0) == 1  # "slow" finished after the partition was gone
    assert "revoked while a job was still running: its result will not be committed" in caplog.text


def test_lost_partitions_are_forgotten_without_a_commit(caplog: pytest.LogCaptureFixture) -> None:
    cluster, gates = FakeCluster(), Gates()
    run = start_with_slow_job(cluster, gates)
    wait_for(lambda: cluster.offset("jobs", 0) == 1, WAIT)
    assert run.consumer is not None
    commits = len(run.consumer.commits)

    with caplog.at_level(logging.WARNING, "kafka_jobs.worker"):
        run.consumer.lose(("jobs", 0))
        wait_for(lambda: ("jobs", 0) not in run.worker.ledger.partitions, WAIT)
    assert run.worker.executor.forgotten == [("jobs", 0)]
    gates.open(b"slow")

    assert run.stop() == ExitCode.OK
    assert all(("jobs", 0) not in {(t, p) for t, p, _, _ in offsets} for _, offsets in run.consumer.commits[commits:])
    assert cluster.offset("jobs", 0) == 1
    assert "Lost partitions (no commit)" in caplog.text


def test_a_partition_assigned_again_starts_from_the_committed_offset() -> None:
    cluster, gates = FakeCluster(), Gates()
    run = start_with_slow_job(cluster, gates)
    consumer = run.consumer
    assert consumer is not None
    consumer.revoke(("jobs", 0))
    state = run.worker.ledger.partitions[("jobs", 0)]
    wait_for(lambda: state.stopping, WAIT)
    gates.open(b"slow")
    wait_for(lambda: ("jobs", 0) not in run.worker.ledger.partitions, WAIT)

    consumer.assign(("jobs", 0))

    wait_for(lambda: cluster.offset("jobs", 0) == 6, WAIT)
    assert run.stop() == ExitCode.OK
    assert run.worker.threads.executor.runs("jobs", 0) == [0, 1, 2, 3, 4, 5]  # each once
