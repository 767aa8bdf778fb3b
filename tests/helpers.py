"""Test helpers that are not fixtures: bounded waits, topic names and topic creation.

Tests never sleep to synchronise: they wait for a condition with a deadline (``wait_for``), so a slow
machine makes them slower, not flaky, and a real failure ends with a message instead of a hang.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka.admin import AdminClient, NewTopic

T = TypeVar("T")

# Kafka allows 249 characters; keep well below so a queue prefix or a DLQ suffix still fits.
MAX_TOPIC_NAME = 200
TOPIC_TIMEOUT = 15.0
_SEPARATORS = re.compile(r"[^a-zA-Z0-9._]+")  # runs of anything else, hyphens too, become one "-"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    message: str | Callable[[], str] = "the condition did not become true",
) -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Raises:
        AssertionError: ``timeout`` seconds passed first; the text is ``message`` (called, if it is a
            callable, so it can describe the state at the time of failure).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = message() if callable(message) else message
            raise AssertionError(f"{text} (waited {timeout:g} s)")
        time.sleep(min(interval, remaining))


def param_id(value: object) -> str:
    """Return ``repr(value)`` without memory addresses, for ``parametrize(ids=param_id)``.

    Why: pytest-xdist runs the suite in several processes and requires every one to collect the same test
    ids; ``repr`` of a function or a plain object holds its address, which differs between processes.
    """
    return _ADDRESS.sub("", repr(value))


def unique_topic_name(test_name: str, label: str = "") -> str:
    """Return ``t-<test_name>[-<label>]-<uuid8>`` reduced to legal topic characters and 200 characters."""
    token = uuid.uuid4().hex[:8]
    middle = _SEPARATORS.sub("-", f"{test_name}-{label}" if label else test_name).strip("-.")
    middle = middle[: MAX_TOPIC_NAME - len(f"t--{token}")].rstrip("-.")
    return f"t-{middle}-{token}" if middle else f"t-{token}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, *, timeout: float = TOPIC_TIMEOUT) -> None:
    """Create topic ``name`` and return once the broker's metadata shows all of its partitions.

    Raises:
        confluent_kafka.KafkaException: the broker refused to create it (e.g. it already exists).
        AssertionError: the partitions did not all appear within ``timeout`` seconds.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=timeout)

    def has_all_partitions() -> bool:
        topic = admin.list_topics(name, timeout=min(timeout, 5.0)).topics.get(name)
        return (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.error is None and p.leader >= 0 for p in topic.partitions.values())
        )

    wait_for(
        has_all_partitions,
        timeout=timeout,
        message=f"topic {name!r} did not show {partitions} partition(s) with a leader in the metadata",
    )


def pid_exists(pid: int) -> bool:
    """Return whether a process (or an unreaped zombie) with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
