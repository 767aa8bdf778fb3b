"""One typed settings object built from ``JOB_BACKEND`` and the ``KAFKA_JOBS`` dict.

Validated once and cached; ``kafka_jobs.signal_handlers`` clears the cache when Django's ``setting_changed``
fires, so ``override_settings`` works.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from django.conf import settings as django_settings

from .delays.tiers import DEFAULT_DELAY_TIERS, parse_tiers
from .exceptions import ConfigurationError
from .validators import TOPIC_CHARACTERS, int_at_least_rule, is_int_at_least, is_number, is_topic_prefix

# The JOB_BACKEND choices and the class each one selects (kafka_jobs.backends builds it).
BACKENDS: Mapping[str, str] = {
    "kafka": "kafka_jobs.backends.kafka.KafkaBackend",
    "async": "kafka_jobs.backends.threadpool.ThreadPoolBackend",
    "inline": "kafka_jobs.backends.inline.InlineBackend",
    "test": "kafka_jobs.backends.recording.RecordingBackend",
}
DEFAULT_BACKEND = "async"
# librdkafka keys the worker owns: letting a user set them would break at-least-once delivery.
RESERVED_CONSUMER_KEYS = ("enable.auto.commit", "enable.auto.offset.store", "group.id", "bootstrap.servers")


@dataclasses.dataclass(frozen=True)
class Backoff:
    """How long a partition stays paused after a failing job before the job is retried.

    The defaults here are the only ones: ``KAFKA_JOBS['BACKOFF']`` and a route's ``backoff`` leave out
    what they do not change.
    """

    initial: float = 1.0
    maximum: float = 30.0
    exponential: bool = True

    def __post_init__(self) -> None:
        if not (is_number(self.initial) and self.initial >= 0):
            raise ConfigurationError(f"Backoff initial must be a number of seconds >= 0, got {self.initial!r}.")
        if not (is_number(self.maximum) and self.maximum >= self.initial):
            raise ConfigurationError(
                f"Backoff maximum must be a number of seconds >= initial ({self.initial}), got {self.maximum!r}."
            )
        if not isinstance(self.exponential, bool):
            raise ConfigurationError(f"Backoff exponential must be True or False, got {self.exponential!r}.")

    def delay(self, attempt: int) -> float:
        """Return the pause before retry number ``attempt`` (1 for the first retry)."""
        if not self.exponential:
            return float(self.initial)
        return float(min(self.maximum, self.initial * 2 ** max(0, attempt - 1)))


# KAFKA_JOBS['BACKOFF'] keys (upper case, like every settings key) -> Backoff fields (what a route's
# backoff dict uses): the one place the two spellings meet.
BACKOFF_SETTING_KEYS: Mapping[str, str] = {"INITIAL": "initial", "MAX": "maximum", "EXPONENTIAL": "exponential"}


@dataclasses.dataclass(frozen=True)
class KafkaJobsSettings:
    """The validated ``KAFKA_JOBS`` settings; field names are the lower-cased keys."""

    backend: str = DEFAULT_BACKEND
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "kafka_jobs"
    group_id: str = "kafka_jobs"
    routes: str = "kafka_routes"
    queue_prefix: str = ""
    producer: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    consumer: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    delivery_timeout: float = 30.0
    backoff: Backoff = Backoff()
    shutdown_timeout: float = 30.0
    revoke_timeout: float = 10.0
    concurrency: int = 5
    max_buffered_messages: int = 1000
    commit_interval: float = 0.0  # least seconds between offset commits; 0: on every advance
    enqueue_after_commit: bool = True
    require_route: bool = True
    serializer: str = "kafka_jobs.serializer.JsonSerializer"
    async_threads: int = 4
    # Delayed jobs and recurring jobs (kafka_jobs.delays, kafka_jobs.recurring).
    delay_tiers: tuple[float, ...] = DEFAULT_DELAY_TIERS
    delay_partitions: int = 6
    internal_replication_factor: int = -1  # -1: the broker's default.replication.factor
    # Operations (kafka_jobs.ops): status reports, health file, trace propagation, custom job context.
    report_interval: float = 5.0
    health_file: str | None = None
    tracing: bool = True
    context: tuple[str, ...] = ()
    # The transactional outbox (kafka_jobs.outbox): write jobs as rows in the caller's transaction.
    outbox: bool = False
    outbox_batch_size: int = 500
    outbox_poll_interval: float = 0.05


@dataclasses.dataclass(frozen=True)
class _Rule:
    """What one ``KAFKA_JOBS`` key accepts, and how to say it."""

    accepts: Callable[[Any], bool]
    expected: str


def _of_type(kind: type[str | dict[str, Any] | bool]) -> _Rule:
    # Numbers have rules of their own (validators): bool, an int subclass, must not pass for one.
    return _Rule(lambda value: isinstance(value, kind), "True or False" if kind is bool else f"a {kind.__name__}")


def _int_at_least(minimum: int) -> _Rule:
    return _Rule(lambda value: is_int_at_least(value, minimum), int_at_least_rule(minimum))


_SECONDS = _Rule(lambda value: is_number(value) and value > 0, "a number of seconds > 0")
_SECONDS_OR_ZERO = _Rule(lambda value: is_number(value) and value >= 0, "a number of seconds >= 0")
_RULES: Mapping[str, _Rule] = {
    "BOOTSTRAP_SERVERS": _of_type(str),
    "CLIENT_ID": _of_type(str),
    "GROUP_ID": _of_type(str),
    "ROUTES": _of_type(str),
    "QUEUE_PREFIX": _Rule(is_topic_prefix, f"a str of characters from {TOPIC_CHARACTERS} (it starts every topic name)"),
    "PRODUCER": _of_type(dict),
    "CONSUMER": _of_type(dict),
    "DELIVERY_TIMEOUT": _SECONDS,
    "BACKOFF": _of_type(dict),
    "SHUTDOWN_TIMEOUT": _SECONDS,
    "REVOKE_TIMEOUT": _SECONDS,
    "CONCURRENCY": _int_at_least(1),
    "MAX_BUFFERED_MESSAGES": _int_at_least(1),
    "COMMIT_INTERVAL": _SECONDS_OR_ZERO,
    "ENQUEUE_AFTER_COMMIT": _of_type(bool),
    "REQUIRE_ROUTE": _of_type(bool),
    "SERIALIZER": _of_type(str),
    "ASYNC_THREADS": _int_at_least(1),
    # The ladder's own rules (increasing, positive, whole milliseconds) are checked by delays.tiers.parse_tiers.
    "DELAY_TIERS": _Rule(lambda value: isinstance(value, list | tuple), "a list of delays in seconds"),
    "DELAY_PARTITIONS": _int_at_least(1),
    "REPORT_INTERVAL": _SECONDS,
    "HEALTH_FILE": _Rule(
        lambda value: value is None or (isinstance(value, str) and bool(value)), "a file path or None"
    ),
    "TRACING": _of_type(bool),
    "CONTEXT": _Rule(
        lambda value: isinstance(value, list | tuple) and all(isinstance(v, str) for v in value),
        "a list of dotted paths to job context classes",
    ),
    "INTERNAL_REPLICATION_FACTOR": _Rule(
        lambda value: is_int_at_least(value, 1) or (is_int_at_least(value, -1) and value == -1),
        "an int >= 1, or -1 for the broker's default.replication.factor",
    ),
    "OUTBOX": _of_type(bool),
    "OUTBOX_BATCH_SIZE": _int_at_least(1),
    "OUTBOX_POLL_INTERVAL": _SECONDS,
}


def _check(key: str, value: Any) -> None:
    rule = _RULES[key]
    if not rule.accepts(value):
        raise ConfigurationError(f"KAFKA_JOBS['{key}'] must be {rule.expected}, got {type(value).__name__} {value!r}.")


def _parse_backoff(raw: Mapping[str, Any]) -> Backoff:
    unknown = set(raw) - set(BACKOFF_SETTING_KEYS)
    if unknown:
        keys = ", ".join(map(repr, BACKOFF_SETTING_KEYS))
        fields = ", ".join(map(repr, BACKOFF_SETTING_KEYS.values()))
        raise ConfigurationError(
            f"KAFKA_JOBS['BACKOFF'] has unknown keys {sorted(unknown)}; allowed keys: {keys} (a route's backoff "
            f"dict spells them {fields})."
        )
    try:
        return Backoff(**{BACKOFF_SETTING_KEYS[key]: value for key, value in raw.items()})
    except ConfigurationError as exc:
        raise ConfigurationError(f"KAFKA_JOBS['BACKOFF']: {exc}") from None


def build_settings(backend: Any, raw: Any) -> KafkaJobsSettings:
    """Validate ``JOB_BACKEND`` and the ``KAFKA_JOBS`` dict; raise ``ConfigurationError`` naming the key."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ConfigurationError(f"JOB_BACKEND is {backend!r}; choose one of {', '.join(map(repr, BACKENDS))}.")
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"KAFKA_JOBS must be a dict, got {type(raw).__name__}.")
    unknown = set(raw) - set(_RULES)
    if unknown:
        raise ConfigurationError(
            f"KAFKA_JOBS has unknown keys {sorted(unknown)}; allowed keys: {', '.join(sorted(_RULES))}."
        )
    for key, value in raw.items():
        _check(key, value)
    for key in RESERVED_CONSUMER_KEYS:
        if key in raw.get("CONSUMER", {}):
            raise ConfigurationError(
                f"KAFKA_JOBS['CONSUMER'] sets {key!r}, which the worker manages itself (offsets are committed "
                "only after a job finished, to the group in GROUP_ID on BOOTSTRAP_SERVERS); remove it."
            )
    kwargs: dict[str, Any] = {k.lower(): v for k, v in raw.items() if k != "BACKOFF"}
    if "BACKOFF" in raw:
        kwargs["backoff"] = _parse_backoff(raw["BACKOFF"])
    if "CONTEXT" in raw:
        kwargs["context"] = tuple(raw["CONTEXT"])
    if "DELAY_TIERS" in raw:
        kwargs["delay_tiers"] = parse_tiers(raw["DELAY_TIERS"])
    if not kwargs.get("bootstrap_servers", "x").strip():
        raise ConfigurationError("KAFKA_JOBS['BOOTSTRAP_SERVERS'] is empty; set it to 'host:port[,host:port]'.")
    return KafkaJobsSettings(backend=backend, **kwargs)


def client_config(settings: KafkaJobsSettings) -> dict[str, Any]:
    """Return what every librdkafka client shares: the cluster, our client id, logs through Python logging.

    librdkafka otherwise prints its own log lines to stderr; routed through the ``kafka_jobs.librdkafka``
    logger they obey the project's LOGGING like everything else.
    """
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "logger": logging.getLogger("kafka_jobs.librdkafka"),
    }


@cache
def get_settings() -> KafkaJobsSettings:
    """Return the validated settings (cached until a relevant setting changes)."""
    return build_settings(
        getattr(django_settings, "JOB_BACKEND", DEFAULT_BACKEND), getattr(django_settings, "KAFKA_JOBS", {})
    )
