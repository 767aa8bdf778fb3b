"""One typed settings object built from ``JOB_BACKEND`` and the ``KAFKA_JOBS`` dict.

Validated once and cached; rebuilt when Django's ``setting_changed`` fires so ``override_settings`` works.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, cast

from django.conf import settings as django_settings
from django.core.signals import setting_changed

from .exceptions import ConfigurationError

BACKEND_CHOICES = ("kafka", "async", "inline", "test")
DEFAULT_BACKEND = "async"
# librdkafka keys the worker owns: letting a user set them would break at-least-once delivery.
RESERVED_CONSUMER_KEYS = ("enable.auto.commit", "enable.auto.offset.store", "group.id", "bootstrap.servers")


@dataclasses.dataclass(frozen=True)
class Backoff:
    """How long a partition stays paused after a failing job before the job is retried."""

    initial: float = 1.0
    maximum: float = 30.0
    exponential: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.initial, int | float) and self.initial >= 0):
            raise ConfigurationError(f"Backoff initial must be a number of seconds >= 0, got {self.initial!r}.")
        if not (isinstance(self.maximum, int | float) and self.maximum >= self.initial):
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
    commit_interval: float = 1.0
    enqueue_after_commit: bool = True
    require_route: bool = True
    serializer: str = "kafka_jobs.serializer.JsonSerializer"
    async_threads: int = 4


_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "BOOTSTRAP_SERVERS": (str,),
    "CLIENT_ID": (str,),
    "GROUP_ID": (str,),
    "ROUTES": (str,),
    "QUEUE_PREFIX": (str,),
    "PRODUCER": (dict,),
    "CONSUMER": (dict,),
    "DELIVERY_TIMEOUT": (int, float),
    "BACKOFF": (dict,),
    "SHUTDOWN_TIMEOUT": (int, float),
    "REVOKE_TIMEOUT": (int, float),
    "CONCURRENCY": (int,),
    "MAX_BUFFERED_MESSAGES": (int,),
    "COMMIT_INTERVAL": (int, float),
    "ENQUEUE_AFTER_COMMIT": (bool,),
    "REQUIRE_ROUTE": (bool,),
    "SERIALIZER": (str,),
    "ASYNC_THREADS": (int,),
}
_POSITIVE = (
    "DELIVERY_TIMEOUT",
    "SHUTDOWN_TIMEOUT",
    "REVOKE_TIMEOUT",
    "CONCURRENCY",
    "MAX_BUFFERED_MESSAGES",
    "COMMIT_INTERVAL",
    "ASYNC_THREADS",
)


def _check_type(key: str, value: Any) -> None:
    expected = _KEY_TYPES[key]
    is_bool = isinstance(value, bool)
    if not isinstance(value, expected) or (is_bool and bool not in expected):
        names = " or ".join(t.__name__ for t in expected)
        raise ConfigurationError(f"KAFKA_JOBS['{key}'] must be {names}, got {type(value).__name__} {value!r}.")
    if key in _POSITIVE and cast(float, value) <= 0:
        raise ConfigurationError(f"KAFKA_JOBS['{key}'] must be greater than 0, got {value!r}.")


def _parse_backoff(raw: Mapping[str, Any]) -> Backoff:
    allowed = {"INITIAL", "MAX", "EXPONENTIAL"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigurationError(
            f"KAFKA_JOBS['BACKOFF'] has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}."
        )
    try:
        return Backoff(
            initial=raw.get("INITIAL", 1.0),
            maximum=raw.get("MAX", 30.0),
            exponential=raw.get("EXPONENTIAL", True),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"KAFKA_JOBS['BACKOFF']: {exc}") from None


def build_settings(backend: Any, raw: Any) -> KafkaJobsSettings:
    """Validate ``JOB_BACKEND`` and the ``KAFKA_JOBS`` dict; raise ``ConfigurationError`` naming the key."""
    if backend not in BACKEND_CHOICES:
        raise ConfigurationError(
            f"JOB_BACKEND is {backend!r}; choose one of {', '.join(repr(c) for c in BACKEND_CHOICES)}."
        )
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"KAFKA_JOBS must be a dict, got {type(raw).__name__}.")
    unknown = set(raw) - set(_KEY_TYPES)
    if unknown:
        raise ConfigurationError(
            f"KAFKA_JOBS has unknown keys {sorted(unknown)}; allowed keys: {', '.join(sorted(_KEY_TYPES))}."
        )
    for key, value in raw.items():
        _check_type(key, value)
    for key in RESERVED_CONSUMER_KEYS:
        if key in raw.get("CONSUMER", {}):
            raise ConfigurationError(
                f"KAFKA_JOBS['CONSUMER'] sets {key!r}, which the worker manages itself (offsets are committed "
                "only after a job finished, to the group in GROUP_ID on BOOTSTRAP_SERVERS); remove it."
            )
    kwargs: dict[str, Any] = {k.lower(): v for k, v in raw.items() if k != "BACKOFF"}
    if "BACKOFF" in raw:
        kwargs["backoff"] = _parse_backoff(raw["BACKOFF"])
    if not re.fullmatch(r"[A-Za-z0-9._-]*", kwargs.get("queue_prefix", "")):
        raise ConfigurationError(
            f"KAFKA_JOBS['QUEUE_PREFIX'] is {kwargs['queue_prefix']!r}; a topic name prefix may only use "
            "characters from [A-Za-z0-9._-]."
        )
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


def _reset(*, setting: str, **_: Any) -> None:
    if setting in ("JOB_BACKEND", "KAFKA_JOBS"):
        get_settings.cache_clear()
        from . import backends, routing

        backends.reset()
        routing.reset()


setting_changed.connect(_reset, dispatch_uid="kafka_jobs.conf.reset")
