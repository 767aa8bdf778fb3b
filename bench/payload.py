"""Messages exactly as kafka_jobs writes them (envelope bytes and headers), made fast enough for 1M jobs."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Producer

from kafka_jobs import Job
from kafka_jobs.backends.kafka import build_message
from kafka_jobs.serializer import get_serializer


@dataclasses.dataclass(frozen=True)
class RawMessage:
    """What the raw producer sends: the topic, the envelope and the kj-job / kj-id headers."""

    topic: str
    value: bytes
    headers: list[tuple[str, str | bytes | None]]


def messages_like(job: Job, count: int) -> Iterator[RawMessage]:
    """Yield ``count`` copies of ``job``'s message, each with a fresh job id (in the envelope and header)."""
    template = get_serializer().dumps(job)
    outgoing = build_message(job, template)
    old_id = job.job_id.encode()
    name = job.job_name.encode()
    for _ in range(count):
        new_id = str(uuid.uuid4()).encode()
        headers: list[tuple[str, str | bytes | None]] = [("kj-job", name), ("kj-id", new_id)]
        yield RawMessage(outgoing.topic, template.replace(old_id, new_id), headers)


def produce_all(producer: Producer, messages: Iterable[RawMessage], timeout: float = 120.0) -> int:
    """Produce without waiting per message, then flush; return how many were produced."""
    sent = 0
    for message in messages:
        while True:
            try:
                producer.produce(message.topic, message.value, headers=message.headers)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.05)
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(timeout)
    if left:
        raise RuntimeError(f"{left} message(s) were not delivered within {timeout:.0f}s")
    return sent


def timed(function: Any, *args: Any) -> tuple[Any, float]:
    """Call ``function(*args)``; return its result and the seconds it took."""
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started
