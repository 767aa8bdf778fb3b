"""The kafka_jobs error hierarchy.

Every error inherits ``KafkaJobsError`` and also the builtin that fits, so callers can catch either.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class KafkaJobsError(Exception):
    """Base class of every kafka_jobs error; not raised directly."""


class ConfigurationError(KafkaJobsError, ImproperlyConfigured):
    """A setting, route or option is invalid; the message names the key and the fix."""


class InvalidJob(KafkaJobsError, ValueError):
    """A job class, its options or its arguments are invalid."""


class JobNotRegistered(KafkaJobsError, LookupError):
    """A message names a job that is not in the registry (it is never imported)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"No job is registered under the name {name!r}. Job classes are discovered in the 'jobs' "
            "module or package of each installed app; a message naming anything else is refused."
        )
        self.name = name


class SerializationError(KafkaJobsError, ValueError):
    """A job could not be turned into a message, or a message into a job."""


class EncodeError(SerializationError, TypeError):
    """A job's arguments cannot be serialized (raised at enqueue time, never at run time)."""


class DecodeError(SerializationError):
    """A message cannot be decoded into a job; keeps the raw data and the cause."""

    def __init__(self, message: str, raw: bytes | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class UnsupportedEnvelopeVersion(DecodeError):
    """A message uses an envelope version this release cannot read."""


class ArgumentLoadError(DecodeError):
    """A job argument cannot be loaded again (e.g. the referenced model row was deleted)."""


class EnqueueError(KafkaJobsError, RuntimeError):
    """Dispatching a job to Kafka failed; says where and why."""


class UnroutedQueue(EnqueueError, InvalidJob):
    """A job names a queue that no route in kafka_routes declares."""


class BrokerUnavailable(EnqueueError, ConnectionError):
    """The broker did not acknowledge a message in time (down, unreachable or overloaded)."""


class ReplayRefused(KafkaJobsError, ValueError):
    """A dead letter replay was refused (already replayed, unknown offset or source); nothing was replayed."""


class ReportError(KafkaJobsError, ValueError):
    """A worker report or a queue command read from its topic could not be decoded."""


class UnknownTask(DecodeError, LookupError):
    """A message names something that is not a ``django.tasks`` Task defined in an installed app; never run."""
