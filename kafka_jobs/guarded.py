"""Background threads of a worker process (delay forwarder, recurring scheduler, outbox relays) that stop the
whole process (exit status 1) when one of them fails: work must not stop unnoticed while the process looks
healthy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .worker import ExitCode, Shutdown

JOIN_TIMEOUT = 30.0


class GuardedThreads:
    """Start named threads, turn an error in any of them into a stop of the process, and stop them all."""

    def __init__(self, shutdown: Shutdown, logger: logging.Logger) -> None:
        self.shutdown = shutdown
        self.stop = threading.Event()  # set by close(): each thread's loop ends at its next turn
        self._logger = logger
        self._threads: list[threading.Thread] = []

    def _start(self, name: str, thread_name: str, run: Callable[[], None]) -> None:
        thread = threading.Thread(target=self._guard, args=(name, run), name=thread_name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _guard(self, name: str, run: Callable[[], None]) -> None:
        try:
            run()
        except BaseException:
            self._logger.critical("The %s stopped on an error; stopping", name, exc_info=True)
            self.shutdown.request(f"the {name} stopped on an error", ExitCode.ERROR)

    def alive(self) -> bool:
        """Whether any of the threads still runs."""
        return any(thread.is_alive() for thread in self._threads)

    def close(self) -> None:
        """Stop the threads and wait for each to finish its turn (commit, acknowledge) for a bounded time."""
        self.stop.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                self._logger.error("The %s thread did not stop within %.0fs", thread.name, JOIN_TIMEOUT)

    def run_until_stopped(self) -> None:
        """Run in the foreground until a signal, an error, or every thread ended on its own (a burst relay)."""
        self.start()
        try:
            while not self.shutdown.check() and self.alive():  # check() turns a received signal into a stop
                self.shutdown.requested.wait(0.2)
        finally:
            self.close()

    def start(self) -> None:
        """Start the threads (each subclass knows which)."""
        raise NotImplementedError
