"""Relays on threads of their own, one per database: in ``runkafkarelay``, or beside the job threads of
``runkafkaworker --relay``. A relay that stops on an error stops the process (exit status 1): rows must not
pile up unnoticed while the process looks healthy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from ..conf import KafkaJobsSettings
from ..guarded import GuardedThreads
from ..worker import Shutdown
from .relay import Relay

logger = logging.getLogger("kafka_jobs.outbox")


class RelayThreads(GuardedThreads):
    """Run one ``Relay`` per database alias until ``close()`` (or, with ``burst``, until its outbox is empty)."""

    def __init__(
        self, settings: KafkaJobsSettings, aliases: Sequence[str], shutdown: Shutdown, *, burst: bool = False
    ) -> None:
        super().__init__(shutdown, logger)
        self.burst = burst
        self.relays = [Relay(settings, alias, stop=self.stop) for alias in aliases]

    def start(self) -> None:
        """Start a thread per relay."""
        for relay in self.relays:
            self._start(
                f"outbox relay of {relay.alias!r}",
                f"kafka-jobs-relay-{relay.alias}",
                partial(relay.run, burst=self.burst),
            )
