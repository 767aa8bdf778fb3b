"""The restart policy of ``runkafkaworker --processes``: backoff, reset after a stable run, giving up."""

from __future__ import annotations

import signal

import pytest

from kafka_jobs.supervisor.policy import RestartPolicy, Restarts, Verdict, describe_status, final_status, summarise
from kafka_jobs.worker import ExitCode


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


POLICY = RestartPolicy(initial_delay=1.0, max_delay=8.0, stable_after=60.0, max_failed_starts=3)


def run_and_die(restarts: Restarts, clock: FakeClock, *, ready_for: float | None, index: int = 1) -> Verdict:
    """Start slot ``index``, let it be ready for ``ready_for`` seconds (never ready if None), then let it die."""
    restarts.started(index)
    clock.advance(0.5)
    if ready_for is not None:
        restarts.ready(index)
        clock.advance(ready_for)
    return restarts.died(index)


def test_a_child_dying_again_and_again_after_it_was_ready_waits_twice_as_long_each_time_up_to_the_cap() -> None:
    clock = FakeClock()
    restarts = Restarts(POLICY, clock)

    delays = [run_and_die(restarts, clock, ready_for=5.0).delay for _ in range(6)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_deaths_after_it_was_ready_never_give_up() -> None:
    clock = FakeClock()
    restarts = Restarts(POLICY, clock)

    verdicts = [run_and_die(restarts, clock, ready_for=1.0) for _ in range(20)]

    assert not any(v.give_up for v in verdicts)
    assert {v.failed_starts for v in verdicts} == {0}


def test_a_stable_run_resets_the_backoff() -> None:
    clock = FakeClock()
    restarts = Restarts(POLICY, clock)
    for _ in range(3):
        run_and_die(restarts, clock, ready_for=1.0)

    assert run_and_die(restarts, clock, ready_for=60.0).delay == 1.0
    assert run_and_die(restarts, clock, ready_for=1.0).delay == 2.0


def test_failing_at_start_max_failed_starts_times_in_a_row_gives_up() -> None:
    clock = FakeClock()
    restarts = Restarts(POLICY, clock)

    verdicts = [run_and_die(restarts, clock, ready_for=None) for _ in range(3)]

    assert [(v.delay, v.give_up, v.failed_starts) for v in verdicts] == [
        (1.0, False, 1),
        (2.0, False, 2),
        (4.0, True, 3),
    ]


def test_a_start_that_became_ready_clears_the_failed_starts() -> None:
    clock = FakeClock()
    restarts = Restarts(POLICY, clock)
    run_and_die(restarts, clock, ready_for=None)
    run_and_die(restarts, clock, ready_for=None)

    run_and_die(restarts, clock, ready_for=1.0)

    assert not run_and_die(restarts, clock, ready_for=None).give_up
    assert not run_and_die(restarts, clock, ready_for=None).give_up
    assert run_and_die(restarts, clock, ready_for=None).give_up


def test_slots_are_counted_separately() -> None:
    clock = FakeClock()
    restarts = Restarts(POLICY, clock)
    for index in (1, 2):
        run_and_die(restarts, clock, ready_for=None, index=index)
        run_and_die(restarts, clock, ready_for=None, index=index)

    assert run_and_die(restarts, clock, ready_for=None, index=1).give_up
    assert run_and_die(restarts, clock, ready_for=1.0, index=2).delay == 4.0


def test_uptime_is_measured_from_the_last_start() -> None:
    clock = FakeClock()
    restarts = Restarts(POLICY, clock)
    restarts.started(1)
    clock.advance(7.0)

    assert restarts.uptime(1) == 7.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"initial_delay": 5.0, "max_delay": 1.0}, "initial_delay"), ({"max_failed_starts": 0}, "max_failed_starts")],
)
def test_an_inconsistent_policy_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


def test_statuses_are_described_with_their_meaning_or_signal() -> None:
    assert describe_status(0) == "exited with status 0 (stopped)"
    assert describe_status(3).startswith("exited with status 3 (a job raised SystemExit")
    assert describe_status(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_status(77) == "exited with status 77"


def test_the_supervisor_exits_with_the_highest_final_status_of_its_children() -> None:
    assert summarise([]) is ExitCode.OK
    assert summarise([ExitCode.OK, ExitCode.OK]) is ExitCode.OK
    assert summarise([ExitCode.OK, ExitCode.SHUTDOWN_TIMEOUT, ExitCode.ERROR]) is ExitCode.SHUTDOWN_TIMEOUT
    assert summarise([ExitCode.CRITICAL_JOB_ERROR, ExitCode.SHUTDOWN_TIMEOUT]) is ExitCode.CRITICAL_JOB_ERROR


def test_a_child_ended_by_the_forwarded_sigterm_before_its_handlers_stopped_cleanly() -> None:
    assert final_status(-signal.SIGTERM) is ExitCode.OK
    assert final_status(-signal.SIGKILL) is ExitCode.ERROR
    assert final_status(2) is ExitCode.SHUTDOWN_TIMEOUT
    assert final_status(99) is ExitCode.ERROR
