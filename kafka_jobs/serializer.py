"""The message format: a versioned UTF-8 JSON envelope <-> a job. JSON only, never pickle.

Swappable through ``KAFKA_JOBS['SERIALIZER']`` (a class with ``dumps(job) -> bytes`` and
``loads(raw) -> Envelope``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from functools import cache
from typing import Any, Protocol

from django.utils import timezone, translation
from django.utils.module_loading import import_string

from . import arguments, registry
from .exceptions import ConfigurationError, DecodeError, EncodeError, UnsupportedEnvelopeVersion
from .job import Job

ENVELOPE_VERSION = 1
_REQUIRED = ("job", "id", "queue", "args", "kwargs")
# One encoder for every dumps(): json.dumps with non-default options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


@dataclasses.dataclass
class Envelope:
    """A decoded message: everything needed to rebuild the job except the decoded arguments."""

    job: str
    job_id: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any]
    executions: int = 0
    enqueued_at: dt.datetime | None = None
    scheduled_at: dt.datetime | None = None
    locale: str | None = None
    timezone: str | None = None
    version: int = ENVELOPE_VERSION

    def to_job(self) -> Job:
        """Look the job up in the registry and load its arguments (models are fetched here)."""
        job_class = registry.get(self.job)
        job = job_class.restore(arguments.decode(self.args), arguments.decode(self.kwargs), self.job_id)
        job.queue_name = self.queue
        job.executions = self.executions
        job.enqueued_at = self.enqueued_at
        job.scheduled_at = self.scheduled_at
        job.locale = self.locale
        job.timezone = self.timezone
        return job


class Serializer(Protocol):
    """What a serializer provides."""

    def dumps(self, job: Job) -> bytes: ...
    def loads(self, raw: bytes | None) -> Envelope: ...


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(data: dict[str, Any], key: str, raw: bytes) -> dt.datetime | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"Envelope field {key!r} is not an ISO datetime: {value!r}.", raw) from exc
    # Always aware, so the worker can compare it with the current time; a naive value is taken as UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


class JsonSerializer:
    """The default serializer: a compact JSON object per job."""

    def dumps(self, job: Job) -> bytes:
        """Encode ``job``; raise ``EncodeError`` for arguments that cannot be sent."""
        if job.enqueued_at is None:
            job.enqueued_at = dt.datetime.now(dt.UTC)  # aware even with USE_TZ = False
        if job.locale is None:
            job.locale = translation.get_language()
        if job.timezone is None:
            job.timezone = timezone.get_current_timezone_name()
        body = {
            "v": ENVELOPE_VERSION,
            "job": job.job_name,
            "id": job.job_id,
            "queue": job.queue_name,
            "args": arguments.encode(job.args),
            "kwargs": arguments.encode(job.kwargs),
            "executions": job.executions,
            "enqueued_at": _iso(job.enqueued_at),
            "scheduled_at": _iso(job.scheduled_at),
            "locale": job.locale,
            "timezone": job.timezone,
        }
        try:
            return _ENCODER.encode(body).encode()
        except (TypeError, ValueError) as exc:
            raise EncodeError(f"Cannot encode {job!r}: {exc}") from exc

    def loads(self, raw: bytes | None) -> Envelope:
        """Decode a message value; raise ``DecodeError`` keeping the raw bytes."""
        if raw is None:
            raise DecodeError("The message has no value (a tombstone); it is not a job.", raw)
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise DecodeError(f"The message value is not UTF-8 JSON: {exc}", raw) from exc
        if not isinstance(data, dict):
            raise DecodeError(f"The message value is JSON but not an object: {type(data).__name__}.", raw)
        version = data.get("v")
        if version != ENVELOPE_VERSION:
            raise UnsupportedEnvelopeVersion(
                f"Envelope version {version!r} is not supported (this release reads version {ENVELOPE_VERSION}).",
                raw,
            )
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise DecodeError(f"The envelope lacks the field(s) {missing}.", raw)
        if not isinstance(data["args"], list) or not isinstance(data["kwargs"], dict):
            raise DecodeError("The envelope's args must be a list and kwargs an object.", raw)
        if not isinstance(data["job"], str) or not isinstance(data["id"], str):
            raise DecodeError("The envelope's job and id must be strings.", raw)
        executions = data.get("executions", 0)
        return Envelope(
            job=data["job"],
            job_id=data["id"],
            queue=str(data["queue"]),
            args=data["args"],
            kwargs=data["kwargs"],
            executions=executions if isinstance(executions, int) else 0,
            enqueued_at=_parse_time(data, "enqueued_at", raw),
            scheduled_at=_parse_time(data, "scheduled_at", raw),
            locale=data.get("locale"),
            timezone=data.get("timezone"),
        )


@cache
def _load(path: str) -> Serializer:
    try:
        return import_string(path)()  # type: ignore[no-any-return]
    except ImportError as exc:
        raise ConfigurationError(f"KAFKA_JOBS['SERIALIZER'] = {path!r} cannot be imported: {exc}") from exc


def get_serializer() -> Serializer:
    """Return the configured serializer instance."""
    from .conf import get_settings

    return _load(get_settings().serializer)
