"""Rules shared by settings, routes, job options and commands: one definition each, so they cannot drift.

Each rule is a predicate plus the words that describe it; callers raise their own typed error (a
``ConfigurationError`` for settings and routes, ``InvalidJob`` for job options, an argparse error for a
command line), so the message names the place the bad value came from.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeGuard

# Kafka allows 249 characters in a topic name; a queue name leaves room for a prefix and a ".dead" suffix.
MAX_QUEUE_NAME = 200
TOPIC_CHARACTERS = "[A-Za-z0-9._-]"
QUEUE_NAME_RULE = f"1-{MAX_QUEUE_NAME} characters from {TOPIC_CHARACTERS}"
_QUEUE_NAME = re.compile(rf"{TOPIC_CHARACTERS}{{1,{MAX_QUEUE_NAME}}}")
_TOPIC_PREFIX = re.compile(rf"{TOPIC_CHARACTERS}*")


def is_queue_name(value: Any) -> TypeGuard[str]:
    """Whether ``value`` can name a queue, and so a Kafka topic (also used for dead letter topics)."""
    return isinstance(value, str) and _QUEUE_NAME.fullmatch(value) is not None


def is_topic_prefix(value: Any) -> TypeGuard[str]:
    """Whether ``value`` can be put in front of a queue name to make a topic name (empty is allowed)."""
    return isinstance(value, str) and _TOPIC_PREFIX.fullmatch(value) is not None


def is_int_at_least(value: Any, minimum: int) -> TypeGuard[int]:
    """Whether ``value`` is an int >= ``minimum``; ``True`` is refused although Python counts it as 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def int_at_least_rule(minimum: int) -> str:
    """Describe ``is_int_at_least(value, minimum)`` for an error message: ``"an int >= 1"``."""
    return f"an int >= {minimum}"


def is_number(value: Any) -> TypeGuard[int | float]:
    """Whether ``value`` is a finite int or float (not a bool): seconds, intervals, timeouts."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
