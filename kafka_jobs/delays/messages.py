"""Where a delayed job's message goes next: into a tier, to the next tier, or to its queue topic.

The job's envelope bytes and key never change on the way; only the ``kj-delay-*`` headers do, and they
are removed when the job reaches its queue.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from ..conf import KafkaJobsSettings
from ..producer import OutgoingMessage
from .headers import Delay, without_delay
from .tiers import DelayLadder


def now_ms() -> int:
    """Return the wall clock in whole milliseconds since the epoch (the clock the delay headers use)."""
    return time.time_ns() // 1_000_000


def epoch_ms(moment: dt.datetime) -> int:
    """Return an aware datetime as whole milliseconds since the Unix epoch, rounded up (never early)."""
    micros = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return -(-micros // 1000)


def into_tier(message: OutgoingMessage, due_ms: int, now_ms: int, ladder: DelayLadder) -> OutgoingMessage:
    """Return what to produce for a job due at ``due_ms``: ``message`` itself if it is due, else a tier message.

    The tier message keeps the key (jobs of one key share a tier partition, so those with the same delay
    keep their order) but never the explicit partition, which belongs to the queue topic: it travels in a
    header with the queue topic's name.
    """
    if due_ms <= now_ms:
        return message
    tier = ladder.tier_for(due_ms - now_ms)
    delay = Delay(due_ms=due_ms, entered_ms=now_ms, topic=message.topic, partition=message.partition)
    return OutgoingMessage(
        tier.topic,
        message.value,
        key=message.key,
        headers=[*without_delay(message.headers), *delay.headers()],
        description=message.description,
    )


def delayed_until(message: OutgoingMessage, due: dt.datetime | None, settings: KafkaJobsSettings) -> OutgoingMessage:
    """Return what to produce for a job due at ``due`` (None or past: ``message`` itself, for its queue)."""
    if due is None:
        return message
    return into_tier(message, epoch_ms(due), now_ms(), DelayLadder(settings.delay_tiers, settings.queue_prefix))


def release_ms(delay: Delay, tier_ms: int | None) -> int:
    """Return when a message leaves its tier: after the tier's delay, or when its job is due if sooner.

    A topic whose delay is unknown (not named like a tier) releases at the due time.
    """
    if tier_ms is None:
        return delay.due_ms
    return min(delay.entered_ms + tier_ms, delay.due_ms)


@dataclasses.dataclass(frozen=True, slots=True)
class Waiting:
    """A message read from a tier, as the forwarder keeps it until its release."""

    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    delay: Delay
    release_ms: int


def next_hop(waiting: Waiting, now_ms: int, ladder: DelayLadder) -> OutgoingMessage:
    """Return the message that moves a released job on: to its queue topic if due, else to the next tier."""
    destination = OutgoingMessage(
        waiting.delay.topic,
        waiting.value,
        key=waiting.key,
        partition=waiting.delay.partition,
        headers=without_delay(waiting.headers),
    )
    return into_tier(destination, waiting.delay.due_ms, now_ms, ladder)
