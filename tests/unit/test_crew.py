"""Which job threads work: a ready lane wakes a parked thread only when no working thread will take it soon."""

from __future__ import annotations

import threading
import time
from typing import Any

from kafka_jobs.routing import active_job_topic
from kafka_jobs.worker import ExitCode
from kafka_jobs.worker.crew import PACE_CAP, SLOW_JOB, STALL, Crew, Seat
from kafka_jobs.worker.executor import Outcome, Verdict
from kafka_jobs.worker.ledger import Ledger
from kafka_jobs.worker.partition import Lane, PartitionState
from tests.helpers import wait_for
from tests.unit.fakes import FakeCluster, FakeExecutor, WorkerRun

WAIT = 10.0
T0 = 1000.0  # a monotonic time


def values(count: int) -> list[bytes]:
    return [str(i).encode() for i in range(count)]


def new_crew() -> Crew:
    """A crew whose lock the test holds, as the ledger's callers do."""
    lock = threading.RLock()
    lock.acquire()
    return Crew(lock)


def parked(crew: Crew, count: int) -> list[Seat]:
    """Seats parked by hand, as ``Crew.park`` leaves them (without a thread waiting)."""
    seats = [crew.join() for _ in range(count)]
    for seat in seats:
        seat.active = False
        crew.parked.append(seat)
    return seats


def quick_jobs(seat: Seat, count: int, took: float = 30e-6) -> float:
    """Run ``count`` jobs of ``took`` seconds on ``seat``; return the time after the last."""
    now = T0
    for _ in range(count):
        seat.begin(now)
        now += took
        seat.end(now)
    return now


def test_a_ready_lane_wakes_no_thread_while_a_working_one_is_between_jobs_or_in_a_young_quick_job() -> None:
    crew = new_crew()
    working = crew.join()
    idle = parked(crew, 3)

    crew.wake(5, T0)  # between jobs: it takes the next lane itself
    working.begin(T0)
    crew.wake(5, T0 + STALL / 2)  # a quick job that began moments ago

    assert crew.parked == idle and not any(seat.chosen for seat in idle)


def test_when_every_working_thread_is_stuck_in_a_job_one_thread_per_ready_lane_wakes_last_parked_first() -> None:
    crew = new_crew()
    working = crew.join()
    first, second, last = parked(crew, 3)
    working.begin(T0)

    crew.wake(2, T0 + 2 * STALL)

    assert [last.chosen, second.chosen, first.chosen] == [True, True, False]
    assert last.active and second.active and crew.parked == [first]
    crew.wake(2, T0 + 2 * STALL)  # the woken ones are between jobs: they take the lanes
    assert crew.parked == [first]


def test_a_lane_a_woken_thread_is_on_its_way_to_wakes_no_other() -> None:
    crew = new_crew()
    working = crew.join()
    working.pace = SLOW_JOB  # its jobs wait
    first, last = parked(crew, 2)

    crew.wake(1, T0)
    crew.wake(1, T0)  # the poll thread again, before the woken thread took the lane

    assert (last.chosen, first.chosen) == (True, False)
    assert crew.answer(last) and not last.chosen
    last.pace = SLOW_JOB  # it took the lane, and its jobs wait too: one more lane wakes one more thread
    crew.wake(1, T0)
    assert first.chosen


def test_with_no_working_thread_a_ready_lane_wakes_one() -> None:
    crew = new_crew()
    first, last = parked(crew, 2)

    crew.wake(1, T0)

    assert (last.chosen, first.chosen) == (True, False)


def test_a_thread_that_exits_while_parked_is_never_woken_for_a_lane() -> None:
    crew = new_crew()
    first, last = parked(crew, 2)

    crew.leave(last)
    crew.wake(1, T0)

    assert (first.chosen, last.chosen) == (True, False)
    assert crew.parked == [] and crew.working == 1


def test_a_thread_whose_jobs_wait_counts_as_busy_between_them_too() -> None:
    seat = new_crew().join()
    now = quick_jobs(seat, 20, took=2 * PACE_CAP)  # e.g. a query each

    assert seat.pace >= SLOW_JOB
    assert seat.busy(now)
    seat.begin(now)
    assert seat.busy(now)
    now = quick_jobs(seat, 20)  # quick again: free soon
    assert not seat.busy(now)


def test_a_quick_job_that_waited_long_for_the_gil_now_and_then_does_not_make_its_thread_look_stuck() -> None:
    seat = new_crew().join()
    now = quick_jobs(seat, 100)
    seat.begin(now)
    now += 10 * STALL  # behind other threads for a long while
    seat.end(now)
    seat.begin(now)

    assert seat.pace < SLOW_JOB
    assert not seat.busy(now + STALL / 2)
    assert seat.busy(now + 2 * STALL)


def ledger_with_ready_lane() -> tuple[Ledger, Lane]:
    ledger = Ledger(max_buffered=10)
    state = PartitionState("jobs", 0, active_job_topic("jobs"))
    ledger.assign([state])
    assert state.accept(0, 10)
    with ledger.cond:
        ledger.add(state, None, (object(), None))
    return ledger, state.lane(None)


def test_a_thread_off_a_lane_parks_though_lanes_are_ready_if_another_working_thread_is_free_to_take_them() -> None:
    ledger, lane = ledger_with_ready_lane()
    free = ledger.join_crew()  # working, between jobs
    other = ledger.join_crew()
    taken: list[Lane | None] = []
    thread = threading.Thread(target=lambda: taken.append(ledger.next_lane(other)), daemon=True)
    thread.start()

    wait_for(lambda: other in ledger.crew.parked, WAIT)
    assert list(ledger.ready) == [lane] and not taken
    assert ledger.next_lane(free) is lane  # the free one takes it
    ledger.close()
    thread.join(WAIT)
    assert taken == [None]


def test_a_thread_off_a_lane_takes_the_ready_lane_when_the_other_working_threads_are_stuck_in_jobs() -> None:
    ledger, lane = ledger_with_ready_lane()
    stuck = ledger.join_crew()
    stuck.begin(time.monotonic() - STALL)
    other = ledger.join_crew()

    assert ledger.next_lane(other) is lane
    assert lane.running and not lane.queued


def test_a_parked_thread_woken_for_a_lane_takes_it() -> None:
    ledger = Ledger(max_buffered=10)
    seat = ledger.join_crew()
    taken: list[Lane | None] = []
    thread = threading.Thread(target=lambda: taken.append(ledger.next_lane(seat)), daemon=True)
    thread.start()
    wait_for(lambda: seat in ledger.crew.parked, WAIT)

    state = PartitionState("jobs", 0, active_job_topic("jobs"))
    ledger.assign([state])
    assert state.accept(0, 10)
    with ledger.cond:
        ledger.add(state, None, (object(), None))
        ledger.wake_threads()
    thread.join(WAIT)

    assert taken == [state.lane(None)]


def test_a_worker_runs_quick_jobs_then_four_waiting_jobs_at_once_on_four_threads() -> None:
    # Quick jobs on six partitions first (the threads settle on as few as keep up), then on four partitions
    # a job that waits at a barrier until four run at once (bounded): the stuck threads must be noticed.
    cluster = FakeCluster()
    for partition in range(6):
        cluster.produce("wide", partition, *values(300), *([b"wait"] if partition < 4 else []))
    barrier = threading.Barrier(4)
    threads: set[str] = set()
    met: list[bool] = []

    def handler(message: Any, failures: int) -> Outcome:
        if message.value() == b"wait":
            try:
                barrier.wait(WAIT)
                met.append(True)
            except threading.BrokenBarrierError:
                met.append(False)
            threads.add(threading.current_thread().name)
        return Outcome(Verdict.DONE)

    executor = FakeExecutor(handler)
    run = WorkerRun(cluster, [active_job_topic("wide", partitions=6)], executor, burst=True, concurrency=4)
    run.start()

    assert run.wait() == ExitCode.OK
    assert met == [True] * 4 and len(threads) == 4
    for partition in range(6):
        assert executor.runs("wide", partition) == list(range(300 + (partition < 4)))
