"""Signal handling: the handler only records the signal, so a signal can arrive anywhere without a deadlock.

These deliver real signals to this process (the handlers are installed for the test and restored after).
A second signal makes the worker ``os._exit``: that is tested on a real worker process
(``tests/integration/test_worker.py``), never here.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kafka_jobs.worker import shutdown as shutdown_module
from kafka_jobs.worker.shutdown import Shutdown

DEADLOCK_TIMEOUT = 5.0


@pytest.fixture
def installed() -> Iterator[Shutdown]:
    """A Shutdown whose handlers are installed for SIGINT and SIGTERM during the test."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    shutdown = Shutdown()
    shutdown.install()
    try:
        yield shutdown
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_a_signal_only_records_itself_and_the_poll_loop_turns_it_into_a_stop(installed: Shutdown) -> None:
    signal.raise_signal(signal.SIGTERM)

    assert installed.pending
    assert not installed.requested.is_set()  # nothing done inside the handler
    assert installed.check()
    assert installed.reason == "received SIGTERM"


def test_a_signal_arriving_inside_request_does_not_deadlock(
    installed: Shutdown, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while the main thread holds request()'s lock (as at --max-jobs): the handler must not wait on it."""
    raised: list[int] = []

    def log_and_signal(*args: Any, **kwargs: Any) -> None:
        if not raised:  # the first log line is written while request() holds its lock
            raised.append(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(shutdown_module.logger, "info", log_and_signal)
    done = threading.Event()
    deadlocked: list[bool] = []

    def watchdog() -> None:
        if not done.wait(DEADLOCK_TIMEOUT):
            deadlocked.append(True)
            installed._lock.release()  # unstick the main thread so the test fails instead of hanging

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        installed.request("--max-jobs 5 reached")
    except RuntimeError:  # "release unlocked lock": the watchdog had to break a deadlock (asserted below)
        pass
    finally:
        done.set()

    assert raised and not deadlocked, "the signal handler waited for the lock held by request()"
    assert installed.check()
    assert installed.reason == "--max-jobs 5 reached"  # the first reason wins; the signal was not lost
    assert installed.pending


def test_a_job_threads_request_is_seen_by_the_poll_loop() -> None:
    shutdown = Shutdown()
    thread = threading.Thread(target=shutdown.request, args=("a job thread crashed",))
    thread.start()
    thread.join()

    assert shutdown.pending and shutdown.check()
    assert shutdown.reason == "a job thread crashed"
