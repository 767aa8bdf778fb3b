"""The ladder of delay tiers: one topic per fixed delay, and which tier a job waits in next.

Every message in a tier waits the same time, so the oldest message of a tier partition is always the
next one due: the forwarder only ever looks at the head of each partition, and a partition holding a
million waiting jobs costs it no more than one holding ten.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

from ..exceptions import ConfigurationError

# Seconds. A job waits in the largest tier not longer than its remaining delay, then in the next.
DEFAULT_DELAY_TIERS: tuple[float, ...] = (1, 5, 30, 300, 1800, 14400, 86400)
MAX_TIERS = 32
# Tier topics are named <QUEUE_PREFIX>kafka_jobs.delay.<label>, e.g. "kafka_jobs.delay.5m".
TOPIC_INFIX = "kafka_jobs.delay."
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
_LABEL_RE = re.compile(r"^([1-9][0-9]*)(d|h|m|s|ms)$")

SETTING = "KAFKA_JOBS['DELAY_TIERS']"


def parse_tiers(value: Any) -> tuple[float, ...]:
    """Validate the ``DELAY_TIERS`` setting: seconds, positive, increasing, whole milliseconds."""
    if not isinstance(value, list | tuple) or not value:
        raise ConfigurationError(
            f"{SETTING} must be a non-empty list of delays in seconds, e.g. {list(DEFAULT_DELAY_TIERS)}; got {value!r}."
        )
    if len(value) > MAX_TIERS:
        raise ConfigurationError(f"{SETTING} has {len(value)} tiers; use at most {MAX_TIERS} (one topic each).")
    previous = 0.0
    for tier in value:
        if not isinstance(tier, int | float) or isinstance(tier, bool) or not math.isfinite(tier) or tier <= 0:
            raise ConfigurationError(f"{SETTING}: each tier must be a number of seconds > 0, got {tier!r}.")
        if round(tier * 1000) != tier * 1000:
            raise ConfigurationError(f"{SETTING}: {tier!r} is not a whole number of milliseconds.")
        if tier <= previous:
            raise ConfigurationError(
                f"{SETTING} must be strictly increasing (shortest first), but {tier!r} follows {previous!r}."
            )
        previous = tier
    return tuple(float(tier) for tier in value)


def label(delay_ms: int) -> str:
    """Return the short name of a delay, as used in a tier topic: 5000 -> "5s", 300000 -> "5m"."""
    for unit, size in _UNITS:
        if delay_ms % size == 0:
            return f"{delay_ms // size}{unit}"
    raise AssertionError("every whole number of milliseconds has a label")  # pragma: no cover


def delay_of_label(text: str) -> int | None:
    """Return the delay in milliseconds a label names (``label``'s inverse), or None if it is not one."""
    match = _LABEL_RE.match(text)
    if match is None:
        return None
    return int(match.group(1)) * dict(_UNITS)[match.group(2)]


@dataclasses.dataclass(frozen=True)
class Tier:
    """One delay tier: every message in its topic waits ``delay_ms`` (or less, if its job is due sooner)."""

    delay_ms: int
    topic: str


class DelayLadder:
    """The configured tiers, shortest first, with the queue prefix applied to their topics."""

    def __init__(self, tiers: Sequence[float], prefix: str = "") -> None:
        self.prefix = prefix
        self.tiers = tuple(Tier(round(t * 1000), f"{prefix}{TOPIC_INFIX}{label(round(t * 1000))}") for t in tiers)

    def __iter__(self) -> Any:
        return iter(self.tiers)

    def topics(self) -> list[str]:
        """Return the tier topics, shortest delay first."""
        return [tier.topic for tier in self.tiers]

    def tier_for(self, remaining_ms: int) -> Tier:
        """Return the largest tier not longer than ``remaining_ms`` (the shortest if none is that short).

        A job due sooner than the shortest tier still waits there: the forwarder releases a message when
        its tier delay has passed or its job is due, whichever comes first.
        """
        chosen = self.tiers[0]
        for tier in self.tiers:
            if tier.delay_ms > remaining_ms:
                break
            chosen = tier
        return chosen

    def delay_of_topic(self, topic: str) -> int | None:
        """Return the delay of a tier topic of this prefix, configured or not (None: not a tier topic).

        Tiers dropped from the setting keep their topics; the forwarder still drains them.
        """
        head = self.prefix + TOPIC_INFIX
        if not topic.startswith(head):
            return None
        return delay_of_label(topic[len(head) :])

    def subscription(self) -> str:
        """Return the regex subscription matching every tier topic of this prefix (librdkafka syntax)."""
        return "^" + re.escape(self.prefix + TOPIC_INFIX) + ".+$"
