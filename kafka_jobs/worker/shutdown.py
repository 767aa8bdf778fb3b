"""Worker shutdown: named exit codes and signal handling that only sets flags.

First SIGINT/SIGTERM: stop taking jobs, let running ones finish, commit, leave the group.
Second signal (or any signal once a stop was requested): exit at once.

A signal handler runs on the main thread between two bytecodes, possibly while that thread holds a lock
(inside ``request()`` at ``--max-jobs``, or inside logging): it must not take one. So the handler only
records the signal, and the poll loop turns it into a stop request (``check()``).
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import threading
from types import FrameType

logger = logging.getLogger("kafka_jobs.worker")


class ExitCode(enum.IntEnum):
    """``runkafkaworker`` exit statuses."""

    OK = 0
    ERROR = 1  # the worker could not run (configuration, broker unreachable at start)
    SHUTDOWN_TIMEOUT = 2  # jobs were still running when SHUTDOWN_TIMEOUT passed; they were not marked
    CRITICAL_JOB_ERROR = 3  # a job raised SystemExit/KeyboardInterrupt/MemoryError; it runs again on restart
    FORCED = 4  # a second signal: exited at once


class Shutdown:
    """The stop request shared by the signal handlers, the poll loop and the job threads."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.reason = ""
        self.exit_code = ExitCode.OK
        self._lock = threading.Lock()
        self._signal: int | None = None  # written only by the signal handler

    def request(self, reason: str, exit_code: ExitCode = ExitCode.OK) -> None:
        """Ask the worker to stop gracefully; the first reason (and a non-OK exit code) wins.

        Never called from a signal handler: it takes a lock and logs.
        """
        with self._lock:
            if not self.requested.is_set():
                self.reason = reason
                logger.info("Stopping: %s", reason)
            if exit_code is not ExitCode.OK and self.exit_code is ExitCode.OK:
                self.exit_code = exit_code
            self.requested.set()

    @property
    def pending(self) -> bool:
        """True once a stop was requested or a signal received; takes no lock (job threads read it per job)."""
        return self._signal is not None or self.requested.is_set()

    def check(self) -> bool:
        """Return True once a stop was requested, turning a received signal into a request first."""
        received = self._signal
        if received is not None and not self.requested.is_set():
            self.request(f"received {signal.Signals(received).name}")
        return self.requested.is_set()

    def install(self) -> None:
        """Handle SIGINT and SIGTERM (call from the main thread)."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Record the signal; exit at once if one was already received or a stop requested. Takes no lock."""
        if self._signal is not None or self.requested.is_set():
            name = signal.Signals(signum).name
            os.write(2, f"Second {name}: exiting at once; running jobs are not marked.\n".encode())
            os._exit(ExitCode.FORCED)
        self._signal = signum
