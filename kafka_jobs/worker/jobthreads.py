"""The job threads: each takes a ready lane from the ledger and runs its jobs, in order, through the executor.

They never call Kafka; what they learn (a job done, to retry, or critical) goes into the ledger, where the
poll thread picks it up (commits, pauses, resumes).
"""

from __future__ import annotations

import logging
import threading
import time

from ..execution import dedicate_thread
from .crew import Seat
from .executor import Executor, Verdict
from .ledger import Ledger
from .partition import Fetched, Lane
from .shutdown import ExitCode, Shutdown

logger = logging.getLogger("kafka_jobs.worker")

# How long a thread keeps running one lane's jobs while other lanes wait for a thread.
LANE_SLICE = 0.01


class JobThreads:
    """``count`` daemon threads running jobs until the ledger is closed."""

    def __init__(self, ledger: Ledger, executor: Executor, shutdown: Shutdown, count: int) -> None:
        self.ledger = ledger
        self.executor = executor
        self.shutdown = shutdown
        self.count = count
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the threads."""
        self._threads = [
            threading.Thread(target=self._main, name=f"kafka-jobs-{i}", daemon=True) for i in range(self.count)
        ]
        for thread in self._threads:
            thread.start()

    def _main(self) -> None:
        dedicate_thread()
        seat = self.ledger.join_crew()
        try:
            while (lane := self.ledger.next_lane(seat)) is not None:
                self._run_lane(lane, seat)
        except BaseException:  # a bug in the worker itself (jobs' errors never get here): stop, don't hang
            logger.critical("Job thread crashed; stopping the worker (unfinished jobs run again)", exc_info=True)
            self.shutdown.request("a job thread crashed", ExitCode.ERROR)
        finally:
            self.ledger.leave_crew(seat)

    def _run_lane(self, lane: Lane, seat: Seat) -> None:
        """Run a lane's messages in order until it is empty, fails, or its time slice ends with others waiting.

        Finishing one job and starting the next take the ledger's lock once. A lane keeps its thread for
        ``LANE_SLICE`` seconds while other lanes wait, so short jobs do not hand lanes between threads
        after every job; a job longer than the slice still lets the waiting lanes go first.
        """
        ledger = self.ledger
        state = lane.partition
        route = state.route
        process = self.executor.process

        def owned() -> bool:
            return not state.revoked

        now = time.monotonic()
        slice_ends = now + LANE_SLICE
        with ledger.cond:
            started = self._start(lane, seat, now)
        while started is not None:
            fetched, offset, failures = started
            try:
                outcome = process(fetched[0], route, failures, owned, envelope=fetched[1])
            except BaseException:  # a bug (the executor never raises): the stop must not wait for this job
                with ledger.cond:
                    seat.end(time.monotonic())
                    ledger.running -= 1
                    state.running_offsets.discard(offset)
                    lane.running = False
                    ledger.cond.notify_all()
                raise
            with ledger.cond:
                now = time.monotonic()
                seat.end(now)
                ledger.running -= 1
                state.running_offsets.discard(offset)
                verdict = outcome.verdict
                if verdict is Verdict.DONE:
                    if lane.messages and lane.messages[0] is fetched:
                        lane.messages.popleft()
                    if state.failures:
                        state.failures.pop(offset, None)
                    if not state.revoked:
                        state.tracker.finish(offset)
                    ledger.completed += 1
                    state.finished += 1
                    if ledger.waiting_for_room and state.buffered <= ledger.room_level:
                        ledger.cond.notify_all()  # the poll thread may fetch again
                elif verdict is Verdict.RETRY:
                    if outcome.counts_as_failure:
                        state.failures[offset] = failures + 1
                    lane.retry_at = time.monotonic() + outcome.delay
                else:
                    self.shutdown.request("a job raised a critical error", ExitCode.CRITICAL_JOB_ERROR)
                    ledger.stopping = True
                if (
                    verdict is not Verdict.DONE
                    or (ledger.ready and now >= slice_ends)
                    or ledger.crew.surplus(seat, now)  # another thread is free: fewer threads, fewer GIL hand-offs
                ):
                    ledger.release(lane)  # behind the waiting lanes, for fairness (no-op while retrying)
                    return
                started = self._start(lane, seat, now)

    def _start(self, lane: Lane, seat: Seat, now: float) -> tuple[Fetched, int, int] | None:
        """Mark the lane's head job running and return it with its offset and failed runs (under cond).

        None if it may not start: the lane is then given up (the poll thread's schedule_due re-queues it
        when it has work again; re-queued here, it would spin at --max-jobs).
        """
        ledger = self.ledger
        # A stop asked for by a signal or another thread: start nothing more, even before the poll thread
        # gets to it.
        if self.shutdown.pending or not ledger.may_start(lane):
            lane.running = False
            ledger.cond.notify_all()
            return None
        state = lane.partition
        fetched = lane.messages[0]
        offset = fetched[0].offset()
        failures = state.failures.get(offset, 0) if state.failures else 0
        state.running_offsets.add(offset)
        ledger.running += 1
        seat.begin(now)
        return fetched, offset, failures
