"""Producing a batch of outbox rows and reporting, for each, acknowledged, failed for good, or not yet.

The relay has a producer of its own (the application's may be busy or configured for speed): it waits for
every acknowledgement of a batch before any row is deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from ..conf import KafkaJobsSettings
from ..delays.messages import delayed_until
from ..producer import OutgoingMessage, producer_config
from .models import OutboxMessage
from .store import message_of

logger = logging.getLogger("kafka_jobs.outbox")

# Errors that will not go away by trying again: the row is marked failed and the relay moves on.
PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError._INVALID_ARG,
    }
)
METADATA_TIMEOUT = 5.0
TOPIC_CACHE_SECONDS = 30.0
# A missing topic or partition fails its rows only once it stayed missing this long: topics created while
# the relay runs (a deploy, a broker restarted empty) are waited for, not failed.
MISSING_GRACE_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one row: ``error`` None means acknowledged; ``permanent`` says whether to give up."""

    error: str | None = None
    permanent: bool = False


ACKNOWLEDGED = Outcome()


class _Delivery:
    __slots__ = ("fatal", "outcome")

    def __init__(self) -> None:
        self.outcome: Outcome | None = None
        self.fatal = False

    def __call__(self, err: KafkaError | None, _msg: object) -> None:
        if err is None:
            self.outcome = ACKNOWLEDGED
        else:
            self.outcome = Outcome(err.str(), permanent=err.code() in PERMANENT and not err.retriable())
            self.fatal = err.fatal()


class Sender:
    """Produce rows with a producer of its own; recreated after a fatal producer error."""

    def __init__(self, settings: KafkaJobsSettings) -> None:
        self.settings = settings
        self._producer: Producer | None = None
        self._partitions: dict[str, tuple[float, int]] = {}  # topic -> (checked at, partition count)
        self._missing_since: dict[tuple[str, int | None], float] = {}  # (topic, partition) -> first seen missing

    @property
    def producer(self) -> Producer:
        """The producer, created on first use."""
        if self._producer is None:
            self._producer = Producer(producer_config(self.settings))
        return self._producer

    def send(self, rows: Sequence[OutboxMessage]) -> list[Outcome]:
        """Produce ``rows`` in their order, wait for the acknowledgements, and return each row's outcome."""
        deliveries: list[_Delivery | Outcome] = []
        deadline = time.monotonic() + self.settings.delivery_timeout + 5.0
        for row in rows:
            message = delayed_until(message_of(row), row.scheduled_at, self.settings)
            problem = self._destination_problem(message)
            if problem is not None:
                deliveries.append(problem)
                continue
            deliveries.append(self._produce(message, deadline))
        pending = [d for d in deliveries if isinstance(d, _Delivery)]
        while any(d.outcome is None for d in pending) and time.monotonic() < deadline:
            self.producer.flush(min(0.1, max(0.0, deadline - time.monotonic())))
        outcomes = [
            d if isinstance(d, Outcome) else d.outcome or Outcome("no acknowledgement from the broker in time")
            for d in deliveries
        ]
        fatal = next((d.outcome for d in pending if d.fatal), None)
        if fatal is not None:
            # An idempotent producer that failed for good refuses every message from then on: start anew.
            logger.error("The relay's producer failed for good (%s); starting a new one", fatal.error)
            self._producer = None
        return outcomes

    def _produce(self, message: OutgoingMessage, deadline: float) -> _Delivery | Outcome:
        delivery = _Delivery()
        kwargs: dict[str, Any] = {"key": message.key, "headers": message.headers, "on_delivery": delivery}
        if message.partition is not None:
            kwargs["partition"] = message.partition
        while True:
            try:
                self.producer.produce(message.topic, message.value, **kwargs)
                return delivery
            except BufferError:
                if time.monotonic() >= deadline:
                    return Outcome("the producer queue stayed full")
                self.producer.poll(0.05)
            except KafkaException as exc:
                err = exc.args[0]
                if isinstance(err, KafkaError):
                    return Outcome(err.str(), permanent=err.code() in PERMANENT and not err.retriable())
                return Outcome(str(err))

    def _destination_problem(self, message: OutgoingMessage) -> Outcome | None:
        """Refuse a message to a topic or partition that does not exist (metadata, cached while all is well)."""
        checked = self._partitions.get(message.topic)
        if checked is None or time.monotonic() - checked[0] > TOPIC_CACHE_SECONDS:
            try:
                topic = self.producer.list_topics(message.topic, timeout=METADATA_TIMEOUT).topics.get(message.topic)
            except KafkaException as exc:
                return Outcome(f"no metadata for topic {message.topic!r}: {exc.args[0]}")
            if topic is None or topic.error is not None or not topic.partitions:
                error = topic.error.str() if topic is not None and topic.error is not None else "unknown topic"
                return self._missing(
                    (message.topic, None),
                    f"topic {message.topic!r} does not exist ({error}); create it (manage.py kafkatopics create), "
                    "then retry the row (manage.py kafkaoutbox retry)",
                )
            checked = (time.monotonic(), len(topic.partitions))
            self._partitions[message.topic] = checked
            self._missing_since.pop((message.topic, None), None)
        if message.partition is not None and message.partition >= checked[1]:
            del self._partitions[message.topic]  # look again next time: partitions may have been added
            return self._missing(
                (message.topic, message.partition),
                f"partition {message.partition} does not exist: topic {message.topic!r} has {checked[1]} partition(s)",
            )
        return None

    def _missing(self, what: tuple[str, int | None], error: str) -> Outcome:
        since = self._missing_since.setdefault(what, time.monotonic())
        return Outcome(error, permanent=time.monotonic() - since >= MISSING_GRACE_SECONDS)

    def close(self, timeout: float = 5.0) -> None:
        """Flush and drop the producer."""
        if self._producer is not None:
            self._producer.flush(timeout)
            self._producer = None
