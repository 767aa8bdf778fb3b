"""The worker's poll loop with a fake consumer: order, flow control, retries, burst, max-jobs, shutdown.

The real ``Worker`` runs (poll thread, job threads, ledger, committer); only the consumer and the executor
are fakes (``tests/unit/fakes.py``), so these tests decide when jobs finish and what the group does.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from kafka_jobs import offsetgap
from kafka_jobs.routing import active_job_topic
from kafka_jobs.serializer import JsonSerializer
from kafka_jobs.worker import ExitCode, jobthreads, listener
from kafka_jobs.worker.executor import Executor, Outcome, Verdict
from tests.helpers import wait_for
from tests.jobs import VirtualJob, read_records
from tests.unit.fakes import FakeCluster, FakeExecutor, Gates, WorkerRun, settings

JOBS = active_job_topic("jobs", partitions=2)
WAIT = 10.0


def values(count: int, prefix: str = "") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(count)]


def gated(gates: Gates, *names: bytes) -> FakeExecutor:
    """An executor whose jobs named in ``names`` block until their gate opens."""

    def handler(message: Any, failures: int) -> Outcome:
        if message.value() in names:
            gates.wait(message.value())
        return Outcome(Verdict.DONE)

    return FakeExecutor(handler)


def lasting(seconds: float) -> FakeExecutor:
    """An executor whose every job takes ``seconds``: the job's own work, not a wait for the test."""

    def handler(message: Any, failures: int) -> Outcome:
        time.sleep(seconds)
        return Outcome(Verdict.DONE)

    return FakeExecutor(handler)


def test_every_message_runs_once_in_partition_order_and_everything_is_committed() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(30))
    cluster.produce("jobs", 1, *values(7))
    executor = FakeExecutor()

    run = WorkerRun(cluster, [JOBS], executor, burst=True, concurrency=3).start()

    assert run.wait() == ExitCode.OK
    assert executor.runs("jobs", 0) == list(range(30))
    assert executor.runs("jobs", 1) == list(range(7))
    assert (cluster.offset("jobs", 0), cluster.offset("jobs", 1)) == (30, 7)


def test_a_running_job_holds_the_commit_point_below_it_while_later_partitions_commit() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"a", b"b", b"slow", b"c")
    cluster.produce("jobs", 1, b"x", b"y")
    gates = Gates()
    run = WorkerRun(cluster, [JOBS], gated(gates, b"slow")).start()

    wait_for(lambda: gates.has_started(b"slow"), WAIT)
    wait_for(lambda: cluster.offset("jobs", 0) == 2 and cluster.offset("jobs", 1) == 2, WAIT)
    assert run.worker.ledger.partitions[("jobs", 0)].tracker.position == 2  # not past "slow"

    gates.open(b"slow")
    wait_for(lambda: cluster.offset("jobs", 0) == 4, WAIT)
    assert run.stop() == ExitCode.OK


def test_a_full_partition_is_paused_and_resumed_with_a_seek_so_nothing_is_skipped_or_repeated() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(40))
    gates = Gates()
    executor = gated(gates, b"0")
    run = WorkerRun(cluster, [active_job_topic("jobs")], executor, settings=settings(max_buffered_messages=8))
    run.start()

    wait_for(lambda: gates.has_started(b"0"), WAIT)
    consumer = run.consumer
    assert consumer is not None
    wait_for(lambda: ("pause", ("jobs", 0)) in consumer.pauses, WAIT)
    state = run.worker.ledger.partitions[("jobs", 0)]
    assert state.buffered == 8  # the limit, the running job's message included
    assert state.next_offset == 8

    gates.open(b"0")
    wait_for(lambda: cluster.offset("jobs", 0) == 40, WAIT)
    assert run.stop() == ExitCode.OK
    assert executor.runs() == list(range(40))
    assert run.worker.ledger.peak_buffered <= 8
    first_resume = consumer.pauses.index(("resume", ("jobs", 0)))
    assert consumer.pauses[first_resume + 1] == ("seek@8", ("jobs", 0))  # the first refused message


def test_a_message_after_a_gap_in_the_offsets_makes_the_worker_read_the_partition_again_from_the_gap() -> None:
    # The broker hands out offsets 6.. before 3-5 are readable (the embedded Tansu did, with two producers
    # writing to the partition): accepted, the commit would move past 3-5 and those jobs would be lost.
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(10))
    cluster.skip("jobs", 0, range(3, 6))
    executor = FakeExecutor()

    run = WorkerRun(cluster, [active_job_topic("jobs")], executor, burst=True).start()

    assert run.wait() == ExitCode.OK
    assert executor.runs() == list(range(10))
    assert cluster.offset("jobs", 0) == 10
    assert run.consumer is not None
    assert ("seek@3", ("jobs", 0)) in run.consumer.pauses


def test_a_real_gap_in_the_offsets_is_read_again_until_gap_confirm_then_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Offsets no fetch ever returns (transaction markers, compaction): the partition is read again until
    # GAP_CONFIRM has passed with the same offset first, then the worker goes on (it does not seek back forever).
    monkeypatch.setattr(offsetgap, "GAP_CONFIRM", 0.05)
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(10))
    cluster.skip("jobs", 0, range(3, 6), times=None)
    executor = FakeExecutor()

    run = WorkerRun(cluster, [active_job_topic("jobs")], executor, burst=True).start()

    assert run.wait() == ExitCode.OK
    assert executor.runs() == [0, 1, 2, 6, 7, 8, 9]
    assert cluster.offset("jobs", 0) == 10
    assert run.consumer is not None
    seeks = {kind for kind, _ in run.consumer.pauses if kind.startswith("seek")}
    assert seeks == {"seek@3"}


def test_a_failing_job_pauses_its_partition_with_backoff_while_the_other_partition_flows() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"flaky", b"behind")
    cluster.produce("jobs", 1, *values(5, "other-"))
    order: list[bytes] = []

    def handler(message: Any, failures: int) -> Outcome:
        order.append(message.value())
        if message.value() == b"flaky" and failures < 2:
            return Outcome(Verdict.RETRY, delay=0.3)
        return Outcome(Verdict.DONE)

    executor = FakeExecutor(handler)
    run = WorkerRun(cluster, [JOBS], executor).start()

    wait_for(lambda: (cluster.offset("jobs", 0), cluster.offset("jobs", 1)) == (2, 5), WAIT)
    assert run.consumer is not None
    pauses = list(run.consumer.pauses)
    assert run.stop() == ExitCode.OK
    assert [c[4] for c in executor.calls if c[3] == b"flaky"] == [0, 1, 2]  # failures so far, per attempt
    assert order.index(b"behind") > max(i for i, v in enumerate(order) if v == b"flaky")
    assert order.index(b"other-4") < max(i for i, v in enumerate(order) if v == b"flaky")
    assert pauses.count(("pause", ("jobs", 0))) == 2  # once per backoff
    assert ("pause", ("jobs", 1)) not in pauses


def test_burst_waits_for_the_assignment_then_stops_once_every_partition_is_drained() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(3))
    cluster.logs[("jobs", 1)] = []
    run = WorkerRun(cluster, [JOBS], FakeExecutor(), burst=True, auto_assign=False).start()

    wait_for(lambda: run.consumer is not None and run.consumer.polls >= 5, WAIT)
    assert run.thread.is_alive()  # several turns of the loop, nothing assigned yet: not "drained"
    assert run.consumer is not None
    run.consumer.assign()

    assert run.wait() == ExitCode.OK
    assert "--burst" in run.shutdown.reason
    assert cluster.offset("jobs", 0) == 3


def test_max_jobs_counts_running_jobs_so_no_thread_starts_one_too_many() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(10))
    cluster.produce("jobs", 1, *values(10))
    first, rest = threading.Event(), threading.Event()

    def handler(message: Any, failures: int) -> Outcome:
        (first if message.offset() == 0 else rest).wait(WAIT)
        return Outcome(Verdict.DONE)

    executor = FakeExecutor(handler)
    run = WorkerRun(cluster, [JOBS], executor, max_jobs=3, concurrency=2).start()
    wait_for(lambda: len(executor.calls) == 2, WAIT)  # both threads busy

    first.set()  # two done: only one more may start, while the other thread waits
    wait_for(lambda: len(executor.calls) == 3, WAIT)
    with pytest.raises(AssertionError):  # a fourth never starts (this wait is expected to run out)
        wait_for(lambda: len(executor.calls) > 3, 0.5)
    rest.set()

    assert run.wait() == ExitCode.OK
    assert len(executor.calls) == 3
    assert cluster.offset("jobs", 0) + cluster.offset("jobs", 1) == 3
    assert run.shutdown.reason == "--max-jobs 3 reached"


def test_stop_lets_the_running_job_finish_commits_it_and_starts_no_other() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"slow", b"next")
    gates = Gates()
    executor = gated(gates, b"slow")
    run = WorkerRun(cluster, [active_job_topic("jobs")], executor).start()
    wait_for(lambda: gates.has_started(b"slow"), WAIT)

    run.shutdown.request("test")
    gates.open(b"slow")

    assert run.wait() == ExitCode.OK
    assert executor.runs() == [0]
    assert cluster.offset("jobs", 0) == 1
    assert run.consumer is not None and run.consumer.closed
    assert run.worker.executor.closed  # its dead letter producer is flushed and released


def test_shutdown_timeout_exits_without_committing_the_running_job() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"stuck")
    gates = Gates()
    run = WorkerRun(
        cluster, [active_job_topic("jobs")], gated(gates, b"stuck"), settings=settings(shutdown_timeout=0.2)
    ).start()
    wait_for(lambda: gates.has_started(b"stuck"), WAIT)

    code = run.stop()
    gates.open(b"stuck")

    assert code == ExitCode.SHUTDOWN_TIMEOUT
    assert cluster.offset("jobs", 0) < 0


def test_a_critical_outcome_stops_the_worker_without_committing_the_job() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"ok", b"exit", b"never")
    executor = FakeExecutor(
        lambda message, failures: Outcome(Verdict.CRITICAL if message.value() == b"exit" else Verdict.DONE)
    )

    run = WorkerRun(cluster, [active_job_topic("jobs")], executor).start()

    assert run.wait() == ExitCode.CRITICAL_JOB_ERROR
    assert executor.runs() == [0, 1]
    assert cluster.offset("jobs", 0) == 1


def test_a_crashed_job_thread_stops_the_worker_with_an_error() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, b"boom")

    def crash(message: Any, failures: int) -> Outcome:
        raise RuntimeError("a bug in the worker")  # the real executor never raises

    run = WorkerRun(
        cluster, [active_job_topic("jobs")], FakeExecutor(crash), settings=settings(shutdown_timeout=60.0)
    ).start()

    assert run.wait(WAIT) == ExitCode.ERROR  # at once: the crashed job is not waited for as if still running
    assert cluster.offset("jobs", 0) < 0


# Virtual partitions ----------------------------------------------------------------------------------------


def virtual_route() -> Any:
    return active_job_topic("vjobs", virtual_partitions={"key": lambda envelope: envelope.args[1], "max_lanes": 4})


def test_virtual_partitions_decode_each_message_once_and_run_keys_in_parallel(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = str(tmp_path / "jobs.log")
    cluster = FakeCluster()
    serializer = JsonSerializer()
    cluster.produce(
        "vjobs", 0, *(serializer.dumps(VirtualJob.set(queue="vjobs").build(log, seq % 3, seq)) for seq in range(9))
    )
    decoded: list[bytes] = []
    loads = JsonSerializer.loads

    def counting_loads(self: JsonSerializer, raw: bytes | None) -> Any:
        decoded.append(raw or b"")
        return loads(self, raw)

    monkeypatch.setattr(JsonSerializer, "loads", counting_loads)

    run = WorkerRun(cluster, [virtual_route()], Executor(settings()), burst=True, concurrency=3).start()

    assert run.wait() == ExitCode.OK
    records = [r for r in read_records(log) if r["event"] == "finished"]
    assert sorted(r["seq"] for r in records) == list(range(9))
    for key in range(3):
        assert [r["seq"] for r in records if r["key"] == key] == [key, key + 3, key + 6]  # in order per key
    assert len(decoded) == 9  # once each: the executor used the listener's envelope
    assert cluster.offset("vjobs", 0) == 9


def test_an_undecodable_message_on_a_virtual_route_gets_its_own_lane_and_the_executor_decides() -> None:
    cluster = FakeCluster()
    good = json.dumps({"v": 1, "job": "x", "id": "1", "queue": "vjobs", "args": [0, 1], "kwargs": {}}).encode()
    cluster.produce("vjobs", 0, b"\xffgarbage", good)
    executor = FakeExecutor()

    run = WorkerRun(cluster, [virtual_route()], executor, burst=True).start()

    assert run.wait() == ExitCode.OK
    envelopes = {c[3]: c[5] for c in executor.calls}
    assert envelopes[b"\xffgarbage"] is None  # left to the executor, which reports it as poison
    assert envelopes[good] is not None and envelopes[good].args == [0, 1]
    assert cluster.offset("vjobs", 0) == 2


def test_a_full_partition_whose_jobs_drain_it_quickly_is_never_paused_and_nothing_is_refetched() -> None:
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(300))
    executor = FakeExecutor()

    run = WorkerRun(
        cluster, [active_job_topic("jobs")], executor, burst=True, settings=settings(max_buffered_messages=20)
    )
    run.start()

    assert run.wait() == ExitCode.OK
    assert executor.runs() == list(range(300))
    assert run.worker.ledger.peak_buffered == 20
    assert run.consumer is not None
    # Never paused while it ran (the stop pauses every partition), so never resumed with a seek back.
    assert [kind for kind, _ in run.consumer.pauses] == ["pause"]


def test_the_poll_thread_fetches_again_as_soon_as_a_full_partition_drains_to_half(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Woken by the job thread when the buffer is down to half, not by a poll timeout or an empty lane.
    monkeypatch.setattr(listener, "BUSY_POLL_TIMEOUT", 1.0)
    monkeypatch.setattr(listener, "POLL_TIMEOUT", 1.0)
    monkeypatch.setattr(listener, "FULL_WAIT", 30.0)
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(60))
    waiting: list[int] = []  # messages buffered (this one included) when each job starts

    def handler(message: Any, failures: int) -> Outcome:
        waiting.append(run.worker.ledger.partitions[("jobs", 0)].buffered)
        time.sleep(0.05)  # the job's own work: the refill must come while the rest of the buffer runs
        return Outcome(Verdict.DONE)

    run = WorkerRun(
        cluster, [active_job_topic("jobs")], FakeExecutor(handler), settings=settings(max_buffered_messages=8)
    )
    started = time.monotonic()
    run.start()
    wait_for(lambda: len(waiting) == 60, WAIT)

    # Never ran low before the end: each refill came at half (4 left), with a job's time to spare for a loaded
    # machine (failed at 3 with 20 ms jobs under load); refills on the 1 s poll timeout would take 7 s or more.
    assert min(waiting[:-8]) >= 2
    assert time.monotonic() - started < 6.0
    assert run.consumer is not None and run.consumer.pauses == []
    assert run.stop() == ExitCode.OK


def test_a_full_partition_whose_jobs_keep_finishing_is_not_paused_however_long_it_stays_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One thread shares its time between two partitions, so neither drains to half before it is refilled:
    # each stays full far longer than FULL_WAIT, yet its jobs progress, and pausing it would only cost a
    # seek back and a refetch.
    monkeypatch.setattr(listener, "FULL_WAIT", 0.2)
    monkeypatch.setattr(jobthreads, "LANE_SLICE", 0.005)
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(150))
    cluster.produce("jobs", 1, *values(150))
    executor = lasting(0.003)
    run = WorkerRun(cluster, [JOBS], executor, burst=True, concurrency=1, settings=settings(max_buffered_messages=8))
    run.start()

    assert run.wait() == ExitCode.OK
    assert (executor.runs("jobs", 0), executor.runs("jobs", 1)) == (list(range(150)), list(range(150)))
    assert run.consumer is not None
    assert [kind for kind, _ in run.consumer.pauses] == ["pause", "pause"]  # only the stop's


def test_a_full_partition_whose_jobs_run_slowly_is_paused_though_they_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its jobs finish (never "stuck"), but under half a buffer per FULL_MAX: librdkafka's read-ahead of it
    # would sit in front of the other partitions' messages, so it is paused, and resumed with a seek.
    monkeypatch.setattr(listener, "FULL_WAIT", 30.0)
    monkeypatch.setattr(listener, "FULL_MAX", 0.15)
    cluster = FakeCluster()
    cluster.produce("jobs", 0, *values(60))
    executor = lasting(0.03)  # 20 jobs (half the buffer) take 0.6 s
    run = WorkerRun(cluster, [JOBS], executor, burst=True, settings=settings(max_buffered_messages=40))
    run.start()

    assert run.wait() == ExitCode.OK
    assert executor.runs() == list(range(60))  # nothing skipped or repeated across the pause
    assert run.consumer is not None
    kinds = [kind for kind, tp in run.consumer.pauses if tp == ("jobs", 0)]
    assert kinds[:2] == ["pause", "resume"] and kinds[2].startswith("seek@")
