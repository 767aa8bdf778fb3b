"""The part of ``runkafkaworker`` that keeps time: the delay forwarder and the recurring scheduler.

Both run on threads of their own beside the job threads (or alone, with ``--scheduling-only``), each
with its own consumer group, so Kafka spreads the tier partitions over every running worker and gives
the schedule topic to exactly one. If either stops on an error the worker stops too (exit status 1):
forwarding must not end silently while jobs keep running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .conf import KafkaJobsSettings
from .delays.forwarder import DelayForwarder
from .recurring.declaration import RecurringJob
from .recurring.scheduler import RecurringScheduler
from .worker import ExitCode, Shutdown

logger = logging.getLogger("kafka_jobs.worker")

JOIN_TIMEOUT = 30.0


class Timekeeper:
    """Run the forwarder, and the scheduler if schedules are declared, until ``close()``."""

    def __init__(self, settings: KafkaJobsSettings, recurring: tuple[RecurringJob, ...], shutdown: Shutdown) -> None:
        self.shutdown = shutdown
        self.stop = threading.Event()
        self.forwarder = DelayForwarder(settings, stop=self.stop)
        self.scheduler = RecurringScheduler(settings, recurring, stop=self.stop) if recurring else None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the threads."""
        components: list[tuple[str, Callable[[], None]]] = [("delay forwarder", self.forwarder.run)]
        if self.scheduler is not None:
            components.append(("recurring scheduler", self.scheduler.run))
        for name, run in components:
            thread = threading.Thread(target=self._guard, args=(name, run), name=f"kafka-jobs-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _guard(self, name: str, run: Callable[[], None]) -> None:
        try:
            run()
        except BaseException:
            logger.critical("The %s stopped on an error; stopping the worker", name, exc_info=True)
            self.shutdown.request(f"the {name} stopped on an error", ExitCode.ERROR)

    def close(self) -> None:
        """Stop the threads: each commits what it forwarded or fired and leaves its group."""
        self.stop.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                logger.error("The %s thread did not stop within %.0fs", thread.name, JOIN_TIMEOUT)

    def run_until_stopped(self) -> None:
        """Run alone (``--scheduling-only``) until a signal or an error asks the process to stop."""
        self.start()
        try:
            while not self.shutdown.check():  # turns a received signal into a stop request
                self.shutdown.requested.wait(0.2)
        finally:
            self.close()
