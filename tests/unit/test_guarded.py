"""GuardedThreads: a failing background thread stops the process; the foreground run ends with its threads."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from kafka_jobs.guarded import GuardedThreads
from kafka_jobs.worker import ExitCode, Shutdown


class Threads(GuardedThreads):
    def __init__(self, shutdown: Shutdown, *runs: Callable[[], None]) -> None:
        super().__init__(shutdown, logging.getLogger("tests.guarded"))
        self.runs = runs

    def start(self) -> None:
        for number, run in enumerate(self.runs):
            self._start(f"part {number}", f"test-part-{number}", run)


def test_an_error_in_a_thread_stops_the_process_with_status_1(caplog: pytest.LogCaptureFixture) -> None:
    def fails() -> None:
        raise RuntimeError("broken")

    shutdown = Shutdown()
    threads = Threads(shutdown, fails)

    threads.run_until_stopped()  # returns: the error asked the process to stop

    assert shutdown.exit_code is ExitCode.ERROR
    assert "The part 0 stopped on an error; stopping" in caplog.text


def test_the_foreground_run_ends_when_every_thread_ended_and_close_sets_the_stop_event() -> None:
    shutdown = Shutdown()
    threads = Threads(shutdown, lambda: None)

    threads.run_until_stopped()

    assert shutdown.exit_code is ExitCode.OK
    assert not threads.alive() and threads.stop.is_set()
