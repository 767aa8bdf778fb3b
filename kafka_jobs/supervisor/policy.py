"""When to start a dead worker process again, when to give up, and the supervisor's exit status.

Pure logic with an injected clock, so the backoff and the give-up rule are unit-tested without processes.

- A child that dies is started again after a backoff: ``initial_delay``, doubling with each death in a row,
  capped at ``max_delay``. A child that ran ``stable_after`` seconds after it was ready resets the count.
- A child that dies before it was ready (bad settings, missing topics, broker unreachable, an import
  error) *failed at start*. ``max_failed_starts`` failed starts in a row of the same child make the
  supervisor give up: restarting would only repeat the same error forever.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable, Iterable

from ..worker import ExitCode

DEFAULT_INITIAL_DELAY = 1.0
DEFAULT_MAX_DELAY = 30.0
DEFAULT_STABLE_AFTER = 60.0
DEFAULT_MAX_FAILED_STARTS = 3

_MEANINGS = {
    ExitCode.OK: "stopped",
    ExitCode.ERROR: "could not run",
    ExitCode.SHUTDOWN_TIMEOUT: "shutdown timeout",
    ExitCode.CRITICAL_JOB_ERROR: "a job raised SystemExit, KeyboardInterrupt or MemoryError",
    ExitCode.FORCED: "exited at once on a second signal",
}


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before restarting a dead child, and how many failed starts end the supervisor."""

    initial_delay: float = DEFAULT_INITIAL_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    stable_after: float = DEFAULT_STABLE_AFTER
    max_failed_starts: int = DEFAULT_MAX_FAILED_STARTS

    def __post_init__(self) -> None:
        if not 0 <= self.initial_delay <= self.max_delay:
            raise ValueError(f"need 0 <= initial_delay <= max_delay, got {self.initial_delay}, {self.max_delay}")
        if self.max_failed_starts < 1:
            raise ValueError(f"max_failed_starts must be at least 1, got {self.max_failed_starts}")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What to do about one dead child: start it again after ``delay`` seconds, or give up."""

    delay: float
    give_up: bool
    failed_starts: int  # failed starts in a row, this one included (0 if it had become ready)


@dataclasses.dataclass
class _Slot:
    started_at: float = 0.0
    ready_at: float | None = None
    failed_starts: int = 0
    deaths: int = 0  # deaths in a row without a stable run


class Restarts:
    """Track each child slot's starts and deaths; ``died()`` says when to start it again."""

    def __init__(self, policy: RestartPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self._slots: dict[int, _Slot] = {}

    def started(self, index: int) -> None:
        """Record that the child of slot ``index`` was (re)started now."""
        slot = self._slots.setdefault(index, _Slot())
        slot.started_at, slot.ready_at = self.clock(), None

    def ready(self, index: int) -> None:
        """Record that the child of slot ``index`` reported it is running jobs."""
        self._slots[index].ready_at = self.clock()

    def uptime(self, index: int) -> float:
        """Return how long the child of slot ``index`` has run since it was started."""
        return self.clock() - self._slots[index].started_at

    def died(self, index: int) -> Verdict:
        """Record the death of slot ``index``'s child and decide about its restart."""
        slot, policy = self._slots[index], self.policy
        if slot.ready_at is None:
            slot.failed_starts += 1
        else:
            slot.failed_starts = 0
            if self.clock() - slot.ready_at >= policy.stable_after:
                slot.deaths = 0
        slot.deaths += 1
        delay = min(policy.initial_delay * 2 ** (slot.deaths - 1), policy.max_delay)
        return Verdict(delay, slot.failed_starts >= policy.max_failed_starts, slot.failed_starts)


def describe_status(returncode: int) -> str:
    """Describe a child's exit status for a log line: the code and its meaning, or the signal that ended it."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    try:
        meaning = _MEANINGS[ExitCode(returncode)]
    except ValueError:
        return f"exited with status {returncode}"
    return f"exited with status {returncode} ({meaning})"


def final_status(returncode: int) -> ExitCode:
    """Map the status of a child that ended during the supervisor's stop to an ``ExitCode``.

    A child ended by the SIGTERM the supervisor forwards had not installed its handlers yet, so it had
    taken no job: that is a clean stop. Any other signal, or an unknown code, is an error.
    """
    if returncode == -signal.SIGTERM:
        return ExitCode.OK
    if returncode < 0:
        return ExitCode.ERROR
    try:
        return ExitCode(returncode)
    except ValueError:
        return ExitCode.ERROR


def summarise(statuses: Iterable[ExitCode]) -> ExitCode:
    """Return the supervisor's exit status: the highest of its children's final ones (0 if there are none)."""
    return max(statuses, default=ExitCode.OK)
