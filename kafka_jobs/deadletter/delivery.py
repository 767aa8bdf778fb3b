"""Delivering dead letters the worker has decided on: each is written (or, if it can never be, its stub) and
kept until then, so a retry repeats the write and never the job.

The executor decides that a message goes to the dead letter queue; from then on this module owns it:

- the copy is built once (it cannot fail: every field has a fallback) and written, acknowledged by the
  broker before the message may be marked;
- a write that may succeed later (broker unreachable, no answer in time, a bug) is retried after the
  route's backoff, counted per message, with the partition paused at it;
- a copy the broker or client refuses for good (``MSG_SIZE_TOO_LARGE``...) is replaced by its stub,
  logged at ERROR; if not even the stub can be written, the message is logged at ERROR and skipped;
- nothing is written for a partition this worker no longer owns, and its decision is forgotten.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..conf import Backoff, KafkaJobsSettings
from ..producer import OutgoingMessage
from .message import dead_letter_message, stub_of
from .text import safe_repr
from .writer import DeadLetterProducer, DeadLetterWriteFailed

logger = logging.getLogger("kafka_jobs.worker")

Key = tuple[str, int, int]  # topic, partition, offset of the original message


class Delivered(enum.Enum):
    """What became of a decided dead letter."""

    COPY = "copy"  # written with the message
    STUB = "stub"  # written without the message, which could never be held
    NOTHING = "nothing"  # not even a stub could be written: the message is skipped
    LATER = "later"  # not written yet: try again after a delay
    DISOWNED = "disowned"  # the partition moved to another worker, which decides


@dataclasses.dataclass(eq=False)
class PendingDeadLetter:
    """A message whose fate is decided (dead letter) but whose dead letter is not written yet."""

    job: Any  # the Job, or None if the message never became one
    error: BaseException
    attempts: int
    letter: OutgoingMessage | None = None  # built on the first write attempt
    stub: bool = False  # the copy was refused for good; ``letter`` is its stub
    failed_writes: int = 0


class DeadLetterDelivery:
    """The dead letters one worker process has decided on and not yet written, and their producer."""

    def __init__(self, settings: KafkaJobsSettings, producer_limit: Callable[[], int]) -> None:
        self.settings = settings
        self._producer_limit = producer_limit
        self._pending: dict[Key, PendingDeadLetter] = {}
        self._lock = threading.Lock()
        self._producer: DeadLetterProducer | None = None

    @property
    def producer(self) -> DeadLetterProducer:
        """The producer for dead letters, made on first use (most workers never write one)."""
        with self._lock:
            if self._producer is None:
                self._producer = DeadLetterProducer(self.settings, self._producer_limit())
            return self._producer

    def waiting(self) -> bool:
        """True if some decided dead letter is not written yet (read without the lock: the executor asks before
        each job, and a decision for the message it is about to run was made before its lane came back)."""
        return bool(self._pending)

    def pending(self, key: Key) -> PendingDeadLetter | None:
        """Return the decided, unwritten dead letter of the message at ``key``, if any."""
        with self._lock:
            return self._pending.get(key)

    def decide(self, key: Key, pending: PendingDeadLetter) -> None:
        """Record that the message at ``key`` goes to the dead letter queue; only its write remains."""
        with self._lock:
            self._pending[key] = pending

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Forget the decisions for partitions this worker lost (their new owner decides again)."""
        lost = set(partitions)
        with self._lock:
            for key in [k for k in self._pending if k[:2] in lost]:
                del self._pending[key]

    def close(self) -> None:
        """Drop the producer (every write waited for its answer, so nothing is pending)."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close()

    def deliver(
        self,
        message: Any,
        dlq_topic: str,
        key: Key,
        pending: PendingDeadLetter,
        *,
        owned: Callable[[], bool],
        backoff: Backoff,
        subject: object,
        extra: dict[str, Any],
    ) -> tuple[Delivered, float]:
        """Write the dead letter of the message at ``key``; return what became of it and, for ``LATER``, when
        to try again. ``subject`` and ``extra`` name the message in log lines."""
        if not owned():
            self.forget_partitions([key[:2]])
            logger.warning(
                "%s: partition no longer owned; not dead-lettering it (its new owner decides)", subject, extra=extra
            )
            return Delivered.DISOWNED, 0.0
        try:
            if pending.letter is None:
                pending.letter = dead_letter_message(
                    message, dlq_topic, group_id=self.settings.group_id, attempts=pending.attempts, exc=pending.error
                )
            self.producer.send(pending.letter)
        except DeadLetterWriteFailed as failure:
            if not failure.permanent:
                return Delivered.LATER, self._later(subject, extra, backoff, pending, str(failure))
            where = f"{message.topic()}/{message.partition()}@{message.offset()}"
            if pending.stub or pending.letter is None:
                self._forget(key)
                logger.error(
                    "%s is SKIPPED without a dead letter: not even a stub can be written (%s). The message stays "
                    "in %s until the topic's retention removes it.",
                    subject,
                    failure,
                    where,
                    extra=extra,
                )
                return Delivered.NOTHING, 0.0
            logger.error(
                "%s: the dead letter can never be written (%s); writing a STUB instead: its kj-dlq-* headers "
                "without the value, which stays in %s until the topic's retention removes it",
                subject,
                failure,
                where,
                extra=extra,
            )
            pending.letter, pending.stub = stub_of(pending.letter, str(failure)), True
            return self.deliver(
                message, dlq_topic, key, pending, owned=owned, backoff=backoff, subject=subject, extra=extra
            )
        except Exception as bug:  # a bug in kafka_jobs: loud, and still never a re-run of the job
            logger.exception("%s: writing the dead letter failed unexpectedly", subject, extra=extra)
            return Delivered.LATER, self._later(subject, extra, backoff, pending, safe_repr(bug))
        self._forget(key)
        return (Delivered.STUB if pending.stub else Delivered.COPY), 0.0

    def _forget(self, key: Key) -> None:
        with self._lock:
            self._pending.pop(key, None)

    @staticmethod
    def _later(subject: object, extra: dict[str, Any], backoff: Backoff, pending: PendingDeadLetter, why: str) -> float:
        pending.failed_writes += 1
        delay = backoff.delay(pending.failed_writes)
        logger.error(
            "%s: could not write the dead letter (%s); the message is not marked, the write (not the job) is "
            "retried in %.2fs",
            subject,
            why,
            delay,
            extra=extra,
        )
        return delay
