"""Offset commits with a fake consumer: sent as soon as a point moves, one in flight, retry counts in metadata."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kafka_jobs.routing import active_job_topic
from kafka_jobs.worker import ExitCode
from kafka_jobs.worker.committer import MAX_METADATA, decode_failures, encode_failures
from kafka_jobs.worker.executor import Outcome, Verdict
from tests.helpers import wait_for
from tests.unit.fakes import FakeCluster, FakeConsumer, FakeExecutor, Gates, WorkerRun, settings

JOBS = active_job_topic("jobs")
WAIT = 10.0


class PollCounter:
    """Counts the worker's polls, so a test can say "within a turn of the loop" without measuring time."""

    def __init__(self, run: WorkerRun) -> None:
        wait_for(lambda: run.consumer is not None, WAIT)
        consumer = run.consumer
        assert consumer is not None
        self.polls = 0
        self.at_commit: list[tuple[int, int]] = []  # (offset, polls when sent)
        poll, commit = consumer.poll, consumer.commit

        def counting_poll(timeout: float = -1) -> Any:
            self.polls += 1
            return poll(timeout)

        def recording_commit(*, offsets: Any, asynchronous: bool = True) -> Any:
            self.at_commit.extend((tp.offset, self.polls) for tp in offsets)
            return commit(offsets=offsets, asynchronous=asynchronous)

        consumer.poll = counting_poll  # type: ignore[method-assign]
        consumer.commit = recording_commit  # type: ignore[method-assign]


def test_each_finished_job_is_committed_on_the_next_turn_of_the_poll_loop() -> None:
    cluster, gates = FakeCluster(), Gates()
    cluster.produce("jobs", 0, b"0", b"1", b"2", b"3")
    executor = FakeExecutor(lambda message, failures: gates.wait(message.value()) or Outcome(Verdict.DONE))
    run = WorkerRun(cluster, [JOBS], executor).start()
    counter = PollCounter(run)
    ledger = run.worker.ledger

    for offset in range(4):
        gates.open(str(offset).encode())
        wait_for(lambda offset=offset: ledger.completed == offset + 1, WAIT)
        finished_by = counter.polls  # the job was recorded as done during this poll or an earlier one
        wait_for(lambda offset=offset: cluster.offset("jobs", 0) == offset + 1, WAIT)
        sent = min(polls for point, polls in counter.at_commit if point == offset + 1)
        # Done during poll n: committed when that poll returns (n), or at the latest after the next one.
        assert sent <= finished_by + 1, (offset, finished_by, counter.at_commit)

    assert run.stop() == ExitCode.OK


def test_one_async_commit_at_a_time_and_the_points_that_moved_meanwhile_go_together() -> None:
    cluster, gates = FakeCluster(), Gates()
    cluster.produce("jobs", 0, *(str(i).encode() for i in range(5)))
    executor = FakeExecutor(lambda message, failures: gates.wait(message.value()) or Outcome(Verdict.DONE))
    run = WorkerRun(cluster, [JOBS], executor, hold_commits=True).start()
    ledger = run.worker.ledger

    for offset in range(5):
        gates.open(str(offset).encode())
        wait_for(lambda offset=offset: ledger.completed == offset + 1, WAIT)
    consumer = run.consumer
    assert consumer is not None
    wait_for(consumer.async_commits, WAIT)
    assert consumer.async_commits() == [[("jobs", 0, 1, None)]]  # the answer to the first is held back

    consumer.release_commits()

    wait_for(lambda: cluster.offset("jobs", 0) == 5, WAIT)
    assert consumer.async_commits() == [[("jobs", 0, 1, None)], [("jobs", 0, 5, None)]]
    assert run.stop() == ExitCode.OK


def test_commit_interval_holds_back_async_commits_until_it_has_passed_and_a_stop_commits_at_once() -> None:
    cluster, gates = FakeCluster(), Gates()
    cluster.produce("jobs", 0, *(str(i).encode() for i in range(4)))
    executor = FakeExecutor(lambda message, failures: gates.wait(message.value()) or Outcome(Verdict.DONE))
    run = WorkerRun(cluster, [JOBS], executor, settings=settings(commit_interval=60.0)).start()
    counter = PollCounter(run)
    ledger = run.worker.ledger
    consumer = run.consumer
    assert consumer is not None

    gates.open(b"0")
    wait_for(lambda: cluster.offset("jobs", 0) == 1, WAIT)  # the first commit goes at once
    gates.open(b"1", b"2", b"3")
    wait_for(lambda: ledger.completed == 4, WAIT)
    polls = counter.polls
    wait_for(lambda: counter.polls >= polls + 5, WAIT)  # several turns of the loop, each could have committed

    assert consumer.async_commits() == [[("jobs", 0, 1, None)]]
    assert cluster.offset("jobs", 0) == 1
    assert run.stop() == ExitCode.OK
    assert cluster.offset("jobs", 0) == 4  # the stop commits synchronously, whatever the interval


def test_with_a_short_commit_interval_the_next_commit_follows_once_it_has_passed() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"0")
    run = WorkerRun(cluster, [JOBS], FakeExecutor(), settings=settings(commit_interval=0.2)).start()
    wait_for(lambda: cluster.offset("jobs", 0) == 1, WAIT)
    first = run.worker.committer.last_sent
    assert first is not None

    cluster.produce("jobs", 0, b"1")
    wait_for(lambda: cluster.offset("jobs", 0) == 2, WAIT)

    second = run.worker.committer.last_sent
    assert second is not None and second - first >= 0.2
    assert run.stop() == ExitCode.OK


def test_a_failed_async_commit_is_sent_again() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"only")
    run = WorkerRun(cluster, [JOBS], FakeExecutor(), auto_assign=False).start()
    wait_for(lambda: run.consumer is not None, WAIT)
    consumer = run.consumer
    assert consumer is not None
    consumer.fail_commits = 1
    consumer.assign()

    wait_for(lambda: cluster.offset("jobs", 0) == 1, WAIT)
    assert consumer.async_commits()[:2] == [[("jobs", 0, 1, None)], [("jobs", 0, 1, None)]]
    assert run.stop() == ExitCode.OK


# Retry counts in the commit metadata -------------------------------------------------------------------------


def test_failures_round_trip_through_commit_metadata() -> None:
    metadata = encode_failures({120: 3, 125: 1})

    assert metadata is not None and json.loads(metadata) == {"kafka_jobs": 1, "failures": {"120": 3, "125": 1}}
    assert decode_failures(metadata, 120) == {120: 3, 125: 1}
    assert decode_failures(metadata, 121) == {125: 1}  # a count below the committed offset is stale
    assert encode_failures({}) is None


@pytest.mark.parametrize(
    "metadata",
    [None, "", "not json", "[1]", '{"kafka_jobs": 2, "failures": {"5": 1}}', '{"kafka_jobs": 1, "failures": [5]}'],
)
def test_metadata_that_is_not_ours_gives_no_counts(metadata: str | None) -> None:
    assert decode_failures(metadata, 0) == {}


def test_bad_entries_are_skipped_and_the_rest_kept() -> None:
    metadata = '{"kafka_jobs": 1, "failures": {"x": 1, "7": true, "8": -1, "9": "2", "10": 2}}'

    assert decode_failures(metadata, 0) == {10: 2}


def test_too_many_counts_keep_the_lowest_offsets_within_the_size_limit() -> None:
    failures = {offset: 3 for offset in range(10**9, 10**9 + 500)}

    metadata = encode_failures(failures)

    assert metadata is not None and len(metadata) <= MAX_METADATA
    kept = decode_failures(metadata, 0)
    assert kept and min(kept) == 10**9 and kept == {o: 3 for o in range(10**9, 10**9 + len(kept))}


def always_failing(delays: list[float]) -> FakeExecutor:
    """Every run fails; the n-th failure waits delays[n] (the last one repeated) before the retry."""
    return FakeExecutor(lambda message, failures: Outcome(Verdict.RETRY, delay=delays[min(failures, len(delays) - 1)]))


def test_a_failure_is_committed_with_the_offset_while_the_job_waits_to_retry() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"ok", b"failing")
    run = WorkerRun(
        cluster,
        [JOBS],
        FakeExecutor(
            lambda m, failures: Outcome(Verdict.RETRY, delay=60) if m.value() == b"failing" else Outcome(Verdict.DONE)
        ),
    ).start()

    wait_for(lambda: decode_failures(cluster.metadata("jobs", 0), 1) == {1: 1}, WAIT)  # before any stop
    assert cluster.offset("jobs", 0) == 1
    assert run.stop() == ExitCode.OK


def test_retry_counts_survive_a_restart_through_the_commit_metadata() -> None:
    cluster = FakeCluster(keeps_commit_metadata=True)
    cluster.produce("jobs", 0, b"failing")
    first = always_failing([0.0, 60.0])
    run = WorkerRun(cluster, [JOBS], first).start()
    wait_for(lambda: len(first.calls) == 2, WAIT)  # failed twice; now waits a minute
    assert run.stop() == ExitCode.OK

    second = always_failing([60.0])
    restarted = WorkerRun(cluster, [JOBS], second).start()
    wait_for(lambda: second.calls, WAIT)

    assert [call[4] for call in first.calls + second.calls] == [0, 1, 2]  # failures so far, at each run
    wait_for(lambda: decode_failures(cluster.metadata("jobs", 0), 0) == {0: 3}, WAIT)
    assert restarted.stop() == ExitCode.OK


def test_on_a_broker_that_drops_commit_metadata_the_count_restarts_with_the_worker() -> None:
    cluster = FakeCluster(keeps_commit_metadata=False)  # Tansu: the documented limit
    cluster.produce("jobs", 0, b"failing")
    first = always_failing([0.0, 60.0])
    run = WorkerRun(cluster, [JOBS], first).start()
    wait_for(lambda: len(first.calls) == 2, WAIT)
    assert run.stop() == ExitCode.OK

    second = always_failing([60.0])
    restarted = WorkerRun(cluster, [JOBS], second).start()
    wait_for(lambda: second.calls, WAIT)

    assert [call[4] for call in second.calls] == [0]
    assert restarted.stop() == ExitCode.OK


def test_counts_of_several_virtual_lanes_are_restored_and_a_success_clears_its_count() -> None:
    route = active_job_topic("vjobs", virtual_partitions={"key": lambda envelope: envelope.args[0], "max_lanes": 8})
    cluster = FakeCluster()

    def envelope(key: int) -> bytes:
        return json.dumps({"v": 1, "job": "j", "id": str(key), "queue": "q", "args": [key], "kwargs": {}}).encode()

    cluster.produce("vjobs", 0, envelope(0), envelope(1), envelope(2))
    first = FakeExecutor(
        lambda m, failures: Outcome(Verdict.DONE) if m.offset() == 1 else Outcome(Verdict.RETRY, delay=60)
    )
    run = WorkerRun(cluster, [route], first).start()
    wait_for(lambda: decode_failures(cluster.metadata("vjobs", 0), 0) == {0: 1, 2: 1}, WAIT)
    assert run.stop() == ExitCode.OK

    second = FakeExecutor(lambda m, failures: Outcome(Verdict.DONE))
    restarted = WorkerRun(cluster, [route], second, burst=True).start()

    assert restarted.wait() == ExitCode.OK
    assert sorted((call[2], call[4]) for call in second.calls) == [(0, 1), (1, 0), (2, 1)]  # 1 ran again: not committed
    assert cluster.offset("vjobs", 0) == 3
    assert cluster.metadata("vjobs", 0) is None  # nothing left to count


def test_a_consumer_that_cannot_read_committed_offsets_starts_counts_from_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from confluent_kafka import KafkaError, KafkaException

    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"failing")
    cluster.committed[("jobs", 0)] = (0, encode_failures({0: 4}))

    def broken(self: FakeConsumer, partitions: Any, timeout: float = -1) -> Any:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT))

    executor = always_failing([60.0])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FakeConsumer, "committed", broken)
        run = WorkerRun(cluster, [JOBS], executor).start()
        wait_for(lambda: executor.calls, WAIT)
        assert run.stop() == ExitCode.OK

    assert executor.calls[0][4] == 0
    assert "retry counts of failing jobs there start from zero" in caplog.text
