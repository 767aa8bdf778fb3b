"""``runkafkaworker --processes 2`` against a real broker: restarts, graceful and forced stops, failed starts.

The supervisor is a real ``manage.py runkafkaworker`` subprocess; its children are found by the pids it
logs ("Started worker 1 (pid 1234)").
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from kafka_jobs import perform_all_later
from kafka_jobs.producer import get_producer
from kafka_jobs.worker import ExitCode
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv, WorkerProcess
from tests.jobs import ExitJob, SlowJob, TraceJob, read_records, read_records_so_far

pytestmark = pytest.mark.integration

PARTITIONS = 6  # the "wide" route
STARTED = re.compile(r"Started worker (\d+) \(pid (\d+)\)")


def children(supervisor: WorkerProcess) -> dict[int, list[int]]:
    """Return worker index -> the pids the supervisor started for it, in order."""
    pids: dict[int, list[int]] = defaultdict(list)
    for index, pid in STARTED.findall(supervisor.output()):
        pids[int(index)].append(int(pid))
    return pids


def alive(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie waiting for init to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_running(supervisor: WorkerProcess, count: int = 2) -> dict[int, list[int]]:
    """Wait until ``count`` children reported they consume; return the children."""
    wait_for(
        lambda: supervisor.output().count(" is running") >= count,
        60,
        message=lambda: f"children not running:\n{supervisor.output()[-3000:]}",
    )
    return children(supervisor)


def finished(log: str) -> list[dict[str, object]]:
    return [r for r in read_records_so_far(log) if r["event"] == "finished"]


def enqueue_wide(log: str, jobs: int, seconds: float) -> None:
    batch = [TraceJob.set(partition=seq % PARTITIONS).build(log, seq, seconds) for seq in range(jobs)]
    assert perform_all_later(batch) == jobs
    get_producer().flush(10)


def test_a_sigkilled_child_is_restarted_and_the_group_loses_no_job(kafka_env: KafkaEnv) -> None:
    log, jobs = kafka_env.log_file(), 240
    enqueue_wide(log, jobs, 0.05)
    supervisor = kafka_env.start_worker("--processes", "2", "--queues", "wide", "--concurrency", "2")
    pids = wait_running(supervisor)
    wait_for(lambda: len(finished(log)) >= 10, 60, message=lambda: supervisor.output()[-3000:])
    victim = pids[1][0]

    os.kill(victim, signal.SIGKILL)

    wait_for(
        lambda: len(children(supervisor)[1]) == 2 and supervisor.output().count(" is running") >= 3,
        60,
        message=lambda: f"worker 1 was not started again:\n{supervisor.output()[-3000:]}",
    )
    assert f"worker 1 (pid {victim}) was killed by SIGKILL" in supervisor.output()
    wait_for(
        lambda: {r["tag"] for r in finished(log)} == set(range(jobs)),
        120,
        message=lambda: f"{len({r['tag'] for r in finished(log)})} of {jobs} jobs finished",
    )
    supervisor.send(signal.SIGTERM)

    assert supervisor.wait(60) == ExitCode.OK, supervisor.output()[-3000:]
    assert kafka_env.committed_offsets("wide", PARTITIONS) == [jobs // PARTITIONS] * PARTITIONS
    output = supervisor.output()
    assert re.search(rf"\[worker 2 pid {pids[2][0]}\] Worker started", output), output[-3000:]  # logs name the child


def test_sigterm_stops_every_child_gracefully_and_no_job_is_lost_or_run_twice(kafka_env: KafkaEnv) -> None:
    log, jobs = kafka_env.log_file(), 120
    enqueue_wide(log, jobs, 0.1)
    supervisor = kafka_env.start_worker("--processes", "2", "--queues", "wide", "--concurrency", "2")
    pids = wait_running(supervisor)
    wait_for(lambda: len(finished(log)) >= 8, 60, message=lambda: supervisor.output()[-3000:])

    supervisor.send(signal.SIGTERM)

    assert supervisor.wait(60) == ExitCode.OK, supervisor.output()[-3000:]
    assert not any(alive(pid) for pid in (*pids[1], *pids[2]))
    records = read_records(log)
    started = Counter((r["partition"], r["offset"]) for r in records if r["event"] == "started")
    done = Counter((r["partition"], r["offset"]) for r in records if r["event"] == "finished")
    assert started == done  # every job that started finished before its worker stopped
    assert set(done.values()) == {1}, "a job ran twice"
    committed = kafka_env.committed_offsets("wide", PARTITIONS)
    assert sum(max(c, 0) for c in committed) >= 8
    for partition in range(PARTITIONS):
        ran = sorted(offset for p, offset in done if p == partition)
        # Exactly the jobs below the commit point ran: the partition's next owner starts with the first
        # job that did not run (nothing lost) and runs none again (nothing twice). (No worker is started
        # to show it: a new member of a group that two members left at once can wait 40 s or more to join
        # Tansu, the test broker.)
        assert ran == list(range(max(committed[partition], 0))), (partition, ran, committed)


def test_children_that_fail_at_start_make_the_supervisor_exit_with_a_clear_error(kafka_env: KafkaEnv) -> None:
    # Another queue prefix: topics that do not exist, which only the worker processes check.
    supervisor = kafka_env.start_worker(
        "--processes", "2", "--queues", "wide", KAFKA_JOBS_QUEUE_PREFIX=f"missing-{kafka_env.prefix}"
    )

    code = supervisor.wait(90)

    output = supervisor.output()
    assert code == ExitCode.ERROR, output[-3000:]
    assert re.search(r"CommandError: Worker \d failed at start 3 times in a row", output), output[-3000:]
    assert "do not exist" in output  # the children's own error
    started = children(supervisor)
    assert max(len(p) for p in started.values()) == 3  # gave up instead of looping
    assert not any(alive(pid) for p in started.values() for pid in p)


def test_a_second_signal_stops_the_children_at_once(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    SlowJob.perform_later(log, "long", 60.0)
    get_producer().flush(10)
    supervisor = kafka_env.start_worker("--processes", "2", "--queues", "single")
    pids = wait_running(supervisor)
    wait_for(lambda: read_records_so_far(log), 60, message=lambda: supervisor.output()[-3000:])

    # Two different signals: two of the same kind sent together may be delivered as one.
    supervisor.send(signal.SIGTERM)
    supervisor.send(signal.SIGINT)

    assert supervisor.wait(30) == ExitCode.FORCED, supervisor.output()[-3000:]
    assert "killing 2 worker process(es) at once" in supervisor.output()
    assert not any(alive(pid) for pid in (*pids[1], *pids[2]))
    assert [r["event"] for r in read_records(log)] == ["started"]
    assert kafka_env.committed("single") < 1  # the job was not marked: it runs again


def test_a_sigkilled_supervisor_leaves_no_child_behind(kafka_env: KafkaEnv) -> None:
    supervisor = kafka_env.start_worker("--processes", "2", "--queues", "wide")
    pids = [p for each in wait_running(supervisor).values() for p in each]
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    # One thread: the supervisor holds no Kafka client (librdkafka runs threads of its own) and no thread.
    assert os.listdir(f"/proc/{supervisor.pid}/task") == [str(supervisor.pid)]

    supervisor.send(signal.SIGKILL)

    wait_for(lambda: not any(alive(pid) for pid in pids), 10, message=f"children {pids} outlived their supervisor")


# Eager rebalancing here: with cooperative-sticky, Tansu can leave the surviving member unassigned for minutes
# after the other one left (see docs/development.md); Apache Kafka rebalances either way in seconds.
@pytest.mark.kafka_jobs_overrides({"CONSUMER": {"partition.assignment.strategy": "range"}})
def test_a_child_stopped_by_a_critical_job_error_is_restarted_and_the_job_runs_again(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    ExitJob.perform_later(log)  # raises SystemExit the first time: its worker process exits with status 3
    get_producer().flush(10)
    supervisor = kafka_env.start_worker("--processes", "2", "--queues", "single")

    # Generous: the job's second run waits for the group to rebalance after a member died, which Tansu can stall
    # for 40 s or more (see docs/development.md); on Apache Kafka it takes seconds.
    wait_for(lambda: len(read_records_so_far(log)) == 2, 150, message=lambda: supervisor.output()[-3000:])
    critical = re.compile(r"worker \d \(pid \d+\) exited with status 3 \(a job raised SystemExit")
    wait_for(lambda: critical.search(supervisor.output()), 30, message=lambda: supervisor.output()[-3000:])
    wait_for(lambda: sum(map(len, children(supervisor).values())) == 3, 30, message=lambda: supervisor.output()[-3000:])
    wait_for(lambda: kafka_env.committed("single") == 1, 30, message="the second run was not committed")

    supervisor.send(signal.SIGTERM)

    assert supervisor.wait(60) == ExitCode.OK, supervisor.output()[-3000:]
