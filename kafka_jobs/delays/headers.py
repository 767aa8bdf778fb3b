"""The ``kj-delay-*`` headers: everything the forwarder needs, so it never decodes a job's envelope.

Times are whole milliseconds since the Unix epoch, written by the producer of each hop (its clock, not the
broker's: a topic's timestamps may be CreateTime or LogAppendTime depending on its configuration).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import cast

PREFIX = "kj-delay-"
DUE = "kj-delay-due"  # when the job may run
ENTERED = "kj-delay-entered"  # when this message was written to its tier
TOPIC = "kj-delay-topic"  # the queue topic the job goes to when due
PARTITION = "kj-delay-partition"  # the explicit partition of that topic, if the job named one

Headers = list[tuple[str, bytes]]


class MalformedDelay(ValueError):
    """A tier message lacks a ``kj-delay-*`` header or carries one that cannot be read."""


@dataclasses.dataclass(frozen=True, slots=True)
class Delay:
    """Where a waiting job goes and when."""

    due_ms: int
    entered_ms: int
    topic: str
    partition: int | None = None

    def headers(self) -> Headers:
        """Return the headers that carry this delay."""
        headers = [
            (DUE, str(self.due_ms).encode()),
            (ENTERED, str(self.entered_ms).encode()),
            (TOPIC, self.topic.encode()),
        ]
        if self.partition is not None:
            headers.append((PARTITION, str(self.partition).encode()))
        return headers


def without_delay(headers: Iterable[tuple[str, bytes | None]] | None) -> Headers:
    """Return ``headers`` without the ``kj-delay-*`` ones, in their order (others, e.g. tracing, are kept)."""
    kept = [header for header in headers or () if not header[0].startswith(PREFIX)]
    return cast(Headers, kept)  # a None value stays None: the producer writes it as a null header


def read_delay(headers: Iterable[tuple[str, bytes | None]] | None) -> Delay:
    """Read the delay of a tier message; raise ``MalformedDelay`` naming what is missing or unreadable.

    One pass over the headers, no decoding of the numbers to text: this runs for every hop of every job.
    """
    due = entered = topic = partition = None
    for key, value in headers or ():
        if key == DUE:
            due = value
        elif key == ENTERED:
            entered = value
        elif key == TOPIC:
            topic = value
        elif key == PARTITION:
            partition = value
    if not topic:
        raise MalformedDelay(f"the {TOPIC} header is missing: the job's queue topic is unknown")
    try:
        topic_name = bytes(topic).decode()
    except UnicodeDecodeError:
        raise MalformedDelay(f"the {TOPIC} header is not UTF-8: {bytes(topic)[:200]!r}") from None
    number = _int(partition, PARTITION) if partition is not None else None
    if number is not None and number < 0:
        raise MalformedDelay(f"the {PARTITION} header is negative: {number}")
    return Delay(_int(due, DUE), _int(entered, ENTERED), topic_name, number)


def _int(raw: bytes | None, name: str) -> int:
    if raw is None:
        raise MalformedDelay(f"the {name} header is missing")
    try:
        return int(raw)  # int() reads ASCII digits from bytes directly
    except ValueError:
        raise MalformedDelay(f"the {name} header is not a whole number: {bytes(raw)[:40]!r}") from None
