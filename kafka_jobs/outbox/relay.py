"""The relay: produce committed outbox rows to Kafka and delete each only after the broker acknowledged it.

One loop per database: claim rows (``claim``), produce them and wait for every acknowledgement (``sender``),
delete the acknowledged rows, mark the rows that can never be produced as failed (with the error, for
``manage.py kafkaoutbox``), leave the others for the next round after a backoff. A crash between an
acknowledgement and the delete produces that row again: the same job id twice, never a lost job.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, close_old_connections, connections
from django.utils import timezone

from ..conf import KafkaJobsSettings
from .claim import Claimer, claimer_for
from .models import OutboxMessage
from .sender import Sender
from .wakeup import waker_for

logger = logging.getLogger("kafka_jobs.outbox")

BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 5.0


@dataclasses.dataclass
class Round:
    """What one round did."""

    claimed: int = 0
    produced: int = 0
    failed: int = 0
    retry: int = 0  # rows left for a later round (broker unavailable, no acknowledgement in time)


class Relay:
    """Relay the outbox of one database until ``stop`` is set (or, with ``burst``, until it is empty)."""

    def __init__(
        self,
        settings: KafkaJobsSettings,
        alias: str = "default",
        *,
        stop: threading.Event | None = None,
        sender_factory: Callable[[KafkaJobsSettings], Sender] = Sender,
    ) -> None:
        self.settings = settings
        self.alias = alias
        self.stop = stop or threading.Event()
        self.batch_size = settings.outbox_batch_size
        self._sender_factory = sender_factory
        self.sender: Sender | None = None
        self.claimer: Claimer | None = None
        self.produced = 0
        self.failed = 0

    def run(self, *, burst: bool = False) -> None:
        """Relay until stopped; with ``burst``, return once no pending row is left."""
        self.sender = self._sender_factory(self.settings)
        waker = waker_for(self.alias, self.settings.outbox_poll_interval, self.stop)
        backoff = BACKOFF_INITIAL
        logger.info("Relaying the outbox of database %r", self.alias)
        try:
            while not self.stop.is_set():
                try:
                    done = self.relay_once()
                except (DatabaseError, InterfaceError):
                    logger.warning("Outbox relay of %r: database error; retrying", self.alias, exc_info=True)
                    close_old_connections()
                    connections[self.alias].close()
                    done = Round(retry=1)
                if done.retry:
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                backoff = BACKOFF_INITIAL
                if done.claimed:
                    continue  # more may be waiting: look again at once
                if burst and not self._pending():
                    return
                waker.wait()
        finally:
            logger.info(
                "Outbox relay of %r stopped: relayed %d row(s), %d failed", self.alias, self.produced, self.failed
            )
            waker.close()
            self.sender.close()
            if self.claimer is not None:
                self.claimer.close()
                self.claimer = None
            connections[self.alias].close()

    def relay_once(self) -> Round:
        """Produce one batch of claimed rows; return what became of them."""
        assert self.sender is not None, "run() creates the sender"
        if self.claimer is None:
            self.claimer = claimer_for(self.alias)
        claimer = self.claimer
        try:
            rows = claimer.claim(self.batch_size)
            if not rows:
                return Round()
            outcomes = self.sender.send(rows)
            acknowledged = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome.error is None]
            failed = [(row, outcome) for row, outcome in zip(rows, outcomes, strict=True) if outcome.permanent]
            # Deleted before the lanes are released, so the next holder of a lane never sees them.
            if acknowledged:
                OutboxMessage.objects.using(self.alias).filter(id__in=acknowledged)._raw_delete(self.alias)
            for row, outcome in failed:
                logger.error(
                    "Outbox row %s (job %s %s to topic %r) cannot be produced and is marked failed: %s",
                    row.id,
                    row.job_name,
                    row.job_id,
                    row.topic,
                    outcome.error,
                )
                OutboxMessage.objects.using(self.alias).filter(id=row.id).update(
                    failed_at=timezone.now(), error=outcome.error or ""
                )
        finally:
            claimer.release()
        retry = len(rows) - len(acknowledged) - len(failed)
        if retry:
            first = next(o.error for o in outcomes if o.error is not None and not o.permanent)
            logger.warning("Outbox relay of %r: %d row(s) not produced, retrying: %s", self.alias, retry, first)
        self.produced += len(acknowledged)
        self.failed += len(failed)
        return Round(claimed=len(rows), produced=len(acknowledged), failed=len(failed), retry=retry)

    def _pending(self) -> bool:
        return OutboxMessage.objects.using(self.alias).filter(failed_at__isnull=True).exists()
