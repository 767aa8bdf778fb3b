"""The confluent-kafka producer's lifecycle: created lazily, per process (fork-safe), flushed at exit.

A daemon thread serves delivery callbacks so that an ``produce_async`` failure is logged promptly even
if the application never produces again.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from .conf import KafkaJobsSettings, client_config, get_settings
from .exceptions import BrokerUnavailable, EnqueueError

logger = logging.getLogger("kafka_jobs.producer")

# Errors that mean "the broker was not reached in time" rather than "this message is wrong".
_UNAVAILABLE = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
}
# How long one flush() of a synchronous produce lasts before it checks its own delivery again. librdkafka
# counts whole milliseconds: below 1 ms it becomes flush(0), which returns before the sender wakes up.
SYNC_FLUSH_STEP = 0.001


@dataclasses.dataclass(slots=True)
class OutgoingMessage:
    """One message to produce, with a description of it for error messages and logs."""

    topic: str
    value: bytes
    key: bytes | None = None
    partition: int | None = None
    headers: list[tuple[str, bytes]] | None = None
    description: str = ""


class _Delivery:
    """The outcome of one synchronous produce, filled in by the delivery callback (on any thread)."""

    __slots__ = ("done", "error", "message")

    def __init__(self, message: OutgoingMessage) -> None:
        self.message = message
        self.done = threading.Event()
        self.error: KafkaError | None = None

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        self.error = err
        self.done.set()


def _report_async_failure(err: KafkaError | None, msg: Message) -> None:
    """Log a failed ``produce_async`` delivery, naming the job from the message's envelope.

    One function for every async message: a callable bound to each message would cost an object per job
    (and a delivery report carries the message's value, but not its headers).
    """
    if err is not None:
        logger.error(
            "Delivery of %s to topic %s failed: %s. The job was NOT enqueued.",
            _described(msg.value()),
            msg.topic(),
            err.str(),
        )


def _described(value: bytes | None) -> str:
    """Name the job whose envelope is ``value`` ("a message" if it is not one)."""
    from .serializer import get_serializer  # imported here: the serializer's imports lead back to this module

    try:
        envelope = get_serializer().loads(value)
    except Exception:
        return "a message"
    return f"job {envelope.job} {envelope.job_id}"


def _error_for(message: OutgoingMessage, err: KafkaError | KafkaException | BufferError | str) -> EnqueueError:
    code = err.code() if isinstance(err, KafkaError) else None
    text = err.str() if isinstance(err, KafkaError) else str(err)
    where = f"{message.description or 'message'} to topic {message.topic!r}"
    if code in _UNAVAILABLE:
        return BrokerUnavailable(
            f"Could not enqueue {where}: the broker did not acknowledge it ({text}). Is Kafka reachable at "
            "KAFKA_JOBS['BOOTSTRAP_SERVERS']?"
        )
    return EnqueueError(f"Could not enqueue {where}: {text}")


def producer_config(settings: KafkaJobsSettings) -> dict[str, Any]:
    """Return the librdkafka producer configuration: safe defaults, then the user's PRODUCER overrides."""
    return {
        **client_config(settings),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": int(settings.delivery_timeout * 1000),
        **settings.producer,
    }


class JobProducer:
    """A thread-safe wrapper over one confluent-kafka ``Producer``."""

    def __init__(self, settings: KafkaJobsSettings) -> None:
        self.settings = settings
        self._producer = Producer(producer_config(settings))
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._serve_callbacks, name="kafka-jobs-producer", daemon=True)
        self._poller.start()

    def _serve_callbacks(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)

    def _enqueue(self, message: OutgoingMessage, on_delivery: Any, deadline: float) -> None:
        # Bound once (this is the enqueue hot path); typed Any because the stub wants list[tuple[str, str | bytes
        # | None]] and lists are invariant, while our headers are list[tuple[str, bytes]].
        produce: Any = self._producer.produce
        while True:
            try:
                if message.partition is None:
                    produce(message.topic, message.value, message.key, headers=message.headers, on_delivery=on_delivery)
                else:
                    produce(
                        message.topic,
                        message.value,
                        message.key,
                        partition=message.partition,
                        headers=message.headers,
                        on_delivery=on_delivery,
                    )
                return
            except BufferError as exc:  # the local queue is full: wait for deliveries, within bounds
                if time.monotonic() >= deadline:
                    raise _error_for(message, f"the producer queue stayed full ({exc})") from exc
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise _error_for(message, exc.args[0]) from exc

    def produce(self, messages: Sequence[OutgoingMessage], *, sync: bool) -> None:
        """Produce ``messages``; with ``sync`` wait for every acknowledgement or raise ``EnqueueError``."""
        wait = self.settings.delivery_timeout + 5.0
        deadline = time.monotonic() + wait
        if not sync:  # nothing to wait for: a failure is only logged
            for message in messages:
                self._enqueue(message, _report_async_failure, deadline)
            return
        deliveries = []
        for message in messages:
            delivery = _Delivery(message)
            self._enqueue(message, delivery, deadline)
            deliveries.append(delivery)
        for delivery in deliveries:
            if not self._wait(delivery, deadline):
                raise BrokerUnavailable(
                    f"No acknowledgement for {delivery.message.description or 'a message'} to topic "
                    f"{delivery.message.topic!r} within {wait:.0f}s; it may or may not have been written."
                )
            if delivery.error is not None:
                raise _error_for(delivery.message, delivery.error)

    def _wait(self, delivery: _Delivery, deadline: float) -> bool:
        """Wait for ``delivery`` until ``deadline``; return whether it was reported.

        While a thread is inside ``flush`` librdkafka sends at once instead of after ``linger.ms``. The
        steps are short because the callback thread may serve our delivery report: ``flush`` would not
        notice until its step ends (or until the queue is empty, which other threads may prevent).
        """
        while not delivery.done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._producer.flush(min(left, SYNC_FLUSH_STEP))
        return True

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for outstanding deliveries; return how many are left."""
        return int(self._producer.flush(timeout))

    def close(self, timeout: float) -> None:
        """Flush, log anything undelivered, and stop the callback thread."""
        left = self.flush(timeout)
        if left:
            logger.error("%d message(s) were still undelivered when the producer closed: those jobs may be lost.", left)
        self._closed.set()
        # The callback thread holds the client: once it has stopped, dropping the wrapper destroys the
        # client now (its last log lines included) rather than at some later garbage collection.
        self._poller.join(timeout=1.0)


_lock = threading.Lock()
_instance: tuple[int, JobProducer] | None = None


def get_producer() -> JobProducer:
    """Return this process's producer, creating it on first use (and again after a fork)."""
    global _instance
    instance = _instance  # read without the lock first: called for every enqueue
    if instance is not None and instance[0] == os.getpid():
        return instance[1]
    with _lock:
        if _instance is None or _instance[0] != os.getpid():
            _instance = (os.getpid(), JobProducer(get_settings()))
        return _instance[1]


def close_producer() -> None:
    """Flush and drop this process's producer (at exit, and when settings change)."""
    global _instance
    with _lock:
        instance, _instance = _instance, None
    if instance is not None and instance[0] == os.getpid():
        instance[1].close(instance[1].settings.delivery_timeout)


atexit.register(close_producer)
