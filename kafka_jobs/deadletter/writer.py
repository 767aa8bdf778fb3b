"""Writing dead letters: a producer allowed to write what a dead letter topic holds, and telling a write that
can never succeed (the message is refused as such) from one that may succeed later (the broker is away).

The job producer keeps librdkafka's limits, so an oversized job is refused at enqueue; the dead letter
producer may write ``topics.dead_letter_producer_limit`` bytes (what a source topic holds plus the
``kj-dlq-*`` headers), and sends one message per batch so several dead letters never add up to a batch
larger than the topic allows.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from ..conf import KafkaJobsSettings
from ..exceptions import EnqueueError
from ..producer import OutgoingMessage, producer_config

# Produce errors that say "this message can never be written here", however often it is tried.
PERMANENT_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # larger than the producer's message.max.bytes or the topic's limit
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_RECORD,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        KafkaError._INVALID_ARG,
        KafkaError._INVALID_TYPE,
        KafkaError._BAD_MSG,
    }
)


class DeadLetterWriteFailed(EnqueueError):
    """A dead letter was not written; ``permanent`` says the same message can never be written."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def _failure(message: OutgoingMessage, error: KafkaError | str) -> DeadLetterWriteFailed:
    if isinstance(error, str):
        return DeadLetterWriteFailed(f"{message.description} to {message.topic!r}: {error}", permanent=False)
    permanent = error.code() in PERMANENT_ERRORS and not error.retriable()
    return DeadLetterWriteFailed(
        f"{message.description} to {message.topic!r}: {error.name()}: {error.str()}", permanent=permanent
    )


class DeadLetterProducer:
    """A producer for dead letters only; ``send`` writes one message and waits for the broker's answer."""

    def __init__(self, settings: KafkaJobsSettings, message_max_bytes: int) -> None:
        self.timeout = settings.delivery_timeout + 5.0
        # Not transactional even if the job producer is: each dead letter is acknowledged on its own.
        base = {k: v for k, v in producer_config(settings).items() if k != "transactional.id"}
        self.config = {
            **base,
            "client.id": settings.client_id + "-dlq",
            "message.max.bytes": message_max_bytes,
            "batch.num.messages": 1,
            "linger.ms": 0,
        }
        self._client: Producer | None = None
        self._lock = threading.Lock()

    def _producer(self) -> Producer:
        with self._lock:
            if self._client is None:
                self._client = Producer(self.config)
            return self._client

    def _discard(self, client: Producer) -> None:
        """Forget a client after a fatal error (an idempotent producer cannot go on); the next send makes one."""
        with self._lock:
            if self._client is client:
                self._client = None

    def send(self, message: OutgoingMessage) -> None:
        """Write ``message`` and wait for the acknowledgement.

        Raises:
            DeadLetterWriteFailed: with ``permanent`` if the message itself is refused (e.g. too large),
                without it if the write may succeed later (broker unreachable, no answer in time).
        """
        client = self._producer()
        done = threading.Event()
        outcome: list[KafkaError | None] = []

        def report(error: KafkaError | None, _message: Any) -> None:
            outcome.append(error)
            done.set()

        kwargs: dict[str, Any] = {"key": message.key, "headers": message.headers, "on_delivery": report}
        if message.partition is not None:
            kwargs["partition"] = message.partition
        try:
            client.produce(message.topic, message.value, **kwargs)
        except KafkaException as exc:
            raise _failure(message, exc.args[0]) from exc
        except BufferError as exc:
            raise _failure(message, f"the producer queue is full ({exc})") from exc
        deadline = time.monotonic() + self.timeout
        while not done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise _failure(message, f"no acknowledgement within {self.timeout:.0f}s; it may have been written")
            client.poll(min(left, 0.1))  # serves delivery reports, this one's or another thread's
        error = outcome[0]
        if error is not None:
            if error.fatal():
                self._discard(client)
            raise _failure(message, error)

    def close(self) -> None:
        """Drop the client (every send waited for its answer, so nothing is pending)."""
        with self._lock:
            self._client = None
