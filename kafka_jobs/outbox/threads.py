"""Relays on threads of their own, one per database: in ``runkafkarelay``, or beside the job threads of
``runkafkaworker --relay``. A relay that stops on an error stops the process (exit status 1): rows must not
pile up unnoticed while the process looks healthy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from ..conf import KafkaJobsSettings
from ..worker import ExitCode, Shutdown
from .relay import Relay

logger = logging.getLogger("kafka_jobs.outbox")

JOIN_TIMEOUT = 30.0


class RelayThreads:
    """Run one ``Relay`` per database alias until ``close()``."""

    def __init__(
        self, settings: KafkaJobsSettings, aliases: Sequence[str], shutdown: Shutdown, *, burst: bool = False
    ) -> None:
        self.shutdown = shutdown
        self.stop = threading.Event()
        self.burst = burst
        self.relays = [Relay(settings, alias, stop=self.stop) for alias in aliases]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start a thread per relay."""
        for relay in self.relays:
            thread = threading.Thread(
                target=self._guard, args=(relay,), name=f"kafka-jobs-relay-{relay.alias}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _guard(self, relay: Relay) -> None:
        try:
            relay.run(burst=self.burst)
        except BaseException:
            logger.critical("The outbox relay of %r stopped on an error; stopping", relay.alias, exc_info=True)
            self.shutdown.request(f"the outbox relay of {relay.alias!r} stopped on an error", ExitCode.ERROR)

    def alive(self) -> bool:
        """Whether any relay thread still runs."""
        return any(thread.is_alive() for thread in self._threads)

    def close(self) -> None:
        """Stop the relays: each finishes its round (waits for its acknowledgements) and deletes what was sent."""
        self.stop.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                logger.error("The %s thread did not stop within %.0fs", thread.name, JOIN_TIMEOUT)

    def run_until_stopped(self) -> None:
        """Run in the foreground until a signal, an error, or (burst) every outbox is empty."""
        self.start()
        try:
            while not self.shutdown.check() and self.alive():
                self.shutdown.requested.wait(0.2)
        finally:
            self.close()
