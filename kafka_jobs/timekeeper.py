"""The part of ``runkafkaworker`` that keeps time: the delay forwarder and the recurring scheduler.

Both run on threads of their own beside the job threads (or alone, with ``--scheduling-only``), each
with its own consumer group, so Kafka spreads the tier partitions over every running worker and gives
the schedule topic to exactly one. If either stops on an error the worker stops too (exit status 1):
forwarding must not end silently while jobs keep running.
"""

from __future__ import annotations

import logging

from .conf import KafkaJobsSettings
from .delays.forwarder import DelayForwarder
from .guarded import GuardedThreads
from .recurring.declaration import RecurringJob
from .recurring.scheduler import RecurringScheduler
from .worker import Shutdown

logger = logging.getLogger("kafka_jobs.worker")


class Timekeeper(GuardedThreads):
    """Run the forwarder, and the scheduler if schedules are declared, until ``close()``."""

    def __init__(self, settings: KafkaJobsSettings, recurring: tuple[RecurringJob, ...], shutdown: Shutdown) -> None:
        super().__init__(shutdown, logger)
        self.forwarder = DelayForwarder(settings, stop=self.stop)
        self.scheduler = RecurringScheduler(settings, recurring, stop=self.stop) if recurring else None

    def start(self) -> None:
        """Start the threads."""
        self._start("delay forwarder", "kafka-jobs-delay forwarder", self.forwarder.run)
        if self.scheduler is not None:
            self._start("recurring scheduler", "kafka-jobs-recurring scheduler", self.scheduler.run)
