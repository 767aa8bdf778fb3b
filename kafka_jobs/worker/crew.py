"""Which job threads work: as few as keep the ready lanes moving, so quick jobs do not fight over the GIL.

Jobs that wait (I/O) run in parallel on up to ``--concurrency`` threads; jobs that do not wait gain nothing
from a second thread, only GIL hand-offs and wake-ups that cost more than the job. So a parked thread is
woken only when no working thread will soon take the waiting lane itself: every working thread is busy,
inside a job that has run for ``STALL`` or more, or running jobs that lately took ``SLOW_JOB`` or more on
average (they wait on something). A working thread that ends a lane while another one is free to take the next parks
instead (the ready lanes then go to that one), and so does one that finishes a job while another working
thread is free, handing its lane back: a thread woken by mistake (its peer only looked stuck, e.g. while the
machine was busy) works one job, not a whole lane. Parked threads are woken last-parked first (their stacks
and caches are still warm) and each on its own condition, so a wake-up never reaches a thread it is not
meant for.

Everything here runs under the ledger's lock; the poll thread re-checks each turn (``Ledger.schedule_due``),
which is how a lane waiting behind a thread that became stuck in a job gets a thread of its own.
"""

from __future__ import annotations

import threading

# A job running this long (seconds) is taken to wait on something: its thread will not be free soon. Longer
# than a job can wait for the GIL behind a few other threads (a switch interval, 5 ms, each) or the poll
# thread, so quick jobs are not mistaken for waiting ones.
STALL = 0.02
# A thread whose recent jobs took this long on average (wall time) runs waiting jobs: its lanes' next jobs
# are expected to wait too. No-op jobs take about 30 us.
SLOW_JOB = 0.0005
# In that average a job counts for at most this long, so a quick job that waited for the GIL or the CPU now
# and then does not move it much, while a run of jobs that each wait brings it over SLOW_JOB in a few jobs.
PACE_CAP = 2 * SLOW_JOB
# Weight of the latest job in that average.
PACE_WEIGHT = 1 / 8


class Seat:
    """One job thread's place in the crew (read and written under the ledger's lock)."""

    __slots__ = ("active", "chosen", "pace", "started", "wake")

    def __init__(self, lock: threading.RLock) -> None:
        self.wake = threading.Condition(lock)
        self.active = True  # working, or about to: not parked
        self.chosen = False  # woken to take a ready lane
        self.started = 0.0  # monotonic start of the job running now, 0.0 between jobs
        self.pace = 0.0  # moving average of its jobs' wall time (seconds)

    def begin(self, now: float) -> None:
        """A job starts (under the lock)."""
        self.started = now

    def end(self, now: float) -> None:
        """The job started by ``begin`` is over (under the lock)."""
        took = now - self.started
        self.pace += ((took if took < PACE_CAP else PACE_CAP) - self.pace) * PACE_WEIGHT
        self.started = 0.0

    def busy(self, now: float) -> bool:
        """True if this thread will not take ready work soon (under the lock).

        It is inside a job that has run for ``STALL``, or its jobs lately waited: between two of them it
        takes the next lane, but the lane after waits as long, so it cannot keep other lanes moving.
        """
        if self.pace >= SLOW_JOB:
            return True
        started = self.started
        return started != 0.0 and now - started >= STALL


class Crew:
    """The job threads' seats: who works, who is parked (a stack), and when to wake one."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.seats: list[Seat] = []
        self.parked: list[Seat] = []  # last parked at the end: woken first
        self.called = 0  # seats woken for a lane that have not looked for it yet
        self.closed = False

    @property
    def working(self) -> int:
        """Seats not parked (under the lock): derived, so it cannot drift from the list."""
        return len(self.seats) - len(self.parked)

    def join(self) -> Seat:
        """Add a seat for a new thread, working until it first finds nothing to do (under the lock)."""
        seat = Seat(self._lock)
        self.seats.append(seat)
        return seat

    def leave(self, seat: Seat) -> None:
        """Remove the seat of a thread that exits (under the lock): a crashed thread must not look free."""
        if seat in self.seats:
            self.answer(seat)
            self.seats.remove(seat)
            if seat in self.parked:
                self.parked.remove(seat)

    def free(self, now: float, besides: Seat | None = None) -> bool:
        """True if a working thread (other than ``besides``) will take ready work soon (under the lock)."""
        return any(s.active and s is not besides and not s.busy(now) for s in self.seats)

    def surplus(self, seat: Seat, now: float) -> bool:
        """True if ``seat``, between two jobs, is not needed: another working thread is free (under the lock).

        Checked after every job, so it costs one comparison while a single thread works.
        """
        return self.working > 1 and self.free(now, besides=seat)

    def wake(self, ready: int, now: float) -> None:
        """Wake parked threads for ``ready`` waiting lanes if no working thread will take them (under the lock)."""
        ready -= self.called  # lanes a woken thread is already on its way to
        if ready <= 0 or not self.parked or self.free(now):
            return
        for _ in range(min(ready, len(self.parked))):
            seat = self.parked.pop()
            seat.active = seat.chosen = True
            self.called += 1
            seat.wake.notify()

    def answer(self, seat: Seat) -> bool:
        """Return whether ``seat`` was woken for a lane, and forget it (under the lock)."""
        if not seat.chosen:
            return False
        seat.chosen = False
        self.called -= 1
        return True

    def park(self, seat: Seat) -> None:
        """Wait until woken for work or closed (under the lock)."""
        seat.active = False
        self.parked.append(seat)
        while not seat.chosen and not self.closed:
            seat.wake.wait()
        if not seat.chosen:  # closed while parked
            self.parked.remove(seat)
            seat.active = True

    def close(self) -> None:
        """Wake every parked thread to exit (under the lock)."""
        self.closed = True
        for seat in self.parked:
            seat.wake.notify()
