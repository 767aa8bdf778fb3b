"""The message format: a versioned UTF-8 JSON envelope <-> a job. JSON only, never pickle.

Swappable through ``KAFKA_JOBS['SERIALIZER']`` (a class with ``dumps(job) -> bytes`` and
``loads(raw) -> Envelope``).

The JSON is orjson's (several times faster than the standard library's) and means exactly what the
standard library made of it before: what orjson refuses or reads differently (NaN, a byte order mark, lone
surrogates, UTF-16, int literals of 19 digits or more) goes through ``json`` as it always did. The output is
compact UTF-8 JSON, which earlier releases read.

Turning bytes into a job either succeeds or raises ``DecodeError`` (``JobNotRegistered`` for an unknown
job name), whatever is wrong with the bytes: such a message can never run. The one exception is an error
that may pass (``may_pass``: the database is down while a model argument is loaded), which propagates so
the worker can try again later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from functools import cache
from typing import Any, NoReturn, Protocol

import orjson
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, NotSupportedError
from django.utils.module_loading import import_string

from . import activelocale, arguments, registry
from .conf import get_settings
from .deadletter.text import class_name, exception_message
from .exceptions import ConfigurationError, DecodeError, EncodeError, UnsupportedEnvelopeVersion
from .job import Job
from .validators import int_at_least_rule, is_int_at_least

ENVELOPE_VERSION = 1
_REQUIRED = ("job", "id", "queue", "args", "kwargs")
# The standard library's encoder, which wrote every message before orjson: for what orjson refuses (lone
# surrogates, str subclasses as dict keys), for a context that is not plain, and for reset_executions.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
# Digits to "0", the rest to " ": an int literal that orjson reads as a float (outside [-2**63, 2**64)) is a
# run of 19 digits or more. Such messages (from releases before orjson) go to json.loads, which reads them exactly.
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_NUMBER = b"0" * 19
# Database errors that say "this data is wrong" rather than "the database is not available now".
_DATA_ERRORS = (DataError, IntegrityError, NotSupportedError)


def may_pass(exc: BaseException) -> bool:
    """True if ``exc``, raised while building a job, may not happen again (a database or network outage)."""
    if isinstance(exc, _DATA_ERRORS):
        return False
    return isinstance(exc, DatabaseError | InterfaceError | OSError)


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
    context: dict[str, Any] | None = None  # custom context (kafka_jobs.ops.context)

    def to_job(self) -> Job:
        """Look the job up in the registry and load its arguments (models are fetched here).

        Raises:
            JobNotRegistered: the job name is unknown.
            DecodeError: the arguments cannot be loaded, whatever the reason, except...
            Exception: ...an error that ``may_pass``, unchanged.
        """
        job_class = registry.get(self.job)
        try:
            args, kwargs = arguments.decode_args(self.args, self.kwargs)
            job = job_class.restore(args, kwargs, self.job_id)
        except DecodeError:
            raise
        except Exception as exc:
            if may_pass(exc):
                raise
            raise DecodeError(
                f"Loading the arguments of {self.job} failed: {class_name(exc)}: {exception_message(exc)}"
            ) from exc
        job.queue_name = self.queue
        job.executions = self.executions
        job.enqueued_at = self.enqueued_at
        job.scheduled_at = self.scheduled_at
        job.locale = self.locale
        job.timezone = self.timezone
        job.context = self.context
        return job


def stamp_context(jobs: Iterable[Job]) -> None:
    """Record the caller's active language and time zone on ``jobs`` that have none (run with them later)."""
    locale, zone = activelocale.current()  # Django's lookups cost more than the rest of a job's encoding
    for job in jobs:
        if job.locale is None:
            job.locale = locale
        if job.timezone is None:
            job.timezone = zone


class Serializer(Protocol):
    """What a serializer provides."""

    def dumps(self, job: Job) -> bytes: ...
    def loads(self, raw: bytes | None) -> Envelope: ...

    # Optional: ``reset_executions(raw) -> bytes``, the message with its run count set back to 0 (used when a
    # dead letter is replayed, so a job retried through the delay tiers gets its retries again). Without it,
    # replayed messages keep their count.


# The last time formatted, and its text: the jobs of one perform_all_later batch share their enqueue time.
_last_iso: tuple[dt.datetime | None, str | None] = (None, None)


def _iso(value: dt.datetime | None) -> str | None:
    global _last_iso
    if value is None:
        return None
    last, text = _last_iso
    if value is not last:
        text = value.isoformat()
        _last_iso = (value, text)
    return text


def _not_text(value: Any, key: str, raw: bytes) -> NoReturn:
    raise DecodeError(f"Envelope field {key!r} must be a string or null, got {type(value).__name__}.", raw)


def _parse_time(value: Any, key: str, raw: bytes) -> dt.datetime:
    if type(value) is not str:
        _not_text(value, key, raw)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise DecodeError(f"Envelope field {key!r} is not an ISO datetime: {value!r:.100}.", raw) from exc
    # Always aware, so the worker can compare it with the current time; a naive value is taken as UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _parse_json(raw: bytes) -> Any:
    """Return what ``json.loads(raw)`` returns (or raise what it raises), with orjson when that is the same.

    orjson refuses NaN and Infinity, a byte order mark, UTF-16 and UTF-32, lone surrogates and nesting
    beyond 1024 levels, and reads int literals outside [-2**63, 2**64) as floats: ``json`` reads those.
    """
    if type(raw) is bytes and _LONG_NUMBER not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


class JsonSerializer:
    """The default serializer: a compact JSON object per job."""

    def dumps(self, job: Job) -> bytes:
        """Encode ``job``; raise ``EncodeError`` for arguments that cannot be sent."""
        enqueued_at = job.enqueued_at
        if enqueued_at is None:
            enqueued_at = job.enqueued_at = dt.datetime.now(dt.UTC)  # aware even with USE_TZ = False
        if job.locale is None or job.timezone is None:
            stamp_context((job,))
        args, kwargs = arguments.encode_args(job.args, job.kwargs)
        scheduled_at = job.scheduled_at
        body = {
            "v": ENVELOPE_VERSION,
            "job": job.job_name,
            "id": job.job_id,
            "queue": job.queue_name,
            "args": args,
            "kwargs": kwargs,
            "executions": job.executions,
            "enqueued_at": _iso(enqueued_at),
            "scheduled_at": None if scheduled_at is None else _iso(scheduled_at),
            "locale": job.locale,
            "timezone": job.timezone,
        }
        context = job.context
        try:
            if context:
                # orjson writes NaN as null and accepts datetimes and UUIDs: a context that is not plain goes
                # through the standard library's encoder, which refuses those, as before.
                body["ctx"] = context if arguments.plain_dict(context) else orjson.Fragment(_ENCODER.encode(context))
            try:
                return orjson.dumps(body)
            except TypeError:  # lone surrogates, str subclasses as dict keys: written as before orjson
                if context:
                    body["ctx"] = context
                return _ENCODER.encode(body).encode()
        except (TypeError, ValueError) as exc:
            raise EncodeError(f"Cannot encode {job!r}: {exc}") from exc

    def reset_executions(self, raw: bytes) -> bytes:
        """Return ``raw`` with ``executions`` 0; unchanged (same bytes) if it is 0 already or not an envelope."""
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return raw
        if not isinstance(data, dict) or not is_int_at_least(data.get("executions"), 1):
            return raw
        data["executions"] = 0
        return _ENCODER.encode(data).encode()

    def loads(self, raw: bytes | None) -> Envelope:
        """Decode a message value; raise ``DecodeError`` keeping the raw bytes (each field's type is checked)."""
        if raw is None:
            raise DecodeError("The message has no value (a tombstone); it is not a job.", raw)
        try:
            data = _parse_json(raw)
        except (ValueError, RecursionError) as exc:  # not UTF-8 JSON, or nested too deeply to parse
            raise DecodeError(f"The message value is not UTF-8 JSON: {type(exc).__name__}: {exc}", raw) from exc
        if not isinstance(data, dict):
            raise DecodeError(f"The message value is JSON but not an object: {type(data).__name__}.", raw)
        get = data.get
        version = get("v")
        if version != ENVELOPE_VERSION or isinstance(version, bool):
            raise UnsupportedEnvelopeVersion(
                f"Envelope version {version!r:.100} is not supported (this release reads version {ENVELOPE_VERSION}).",
                raw,
            )
        try:
            job, job_id, queue, args, kwargs = data["job"], data["id"], data["queue"], data["args"], data["kwargs"]
        except KeyError:
            missing = [key for key in _REQUIRED if key not in data]
            raise DecodeError(f"The envelope lacks the field(s) {missing}.", raw) from None
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise DecodeError("The envelope's args must be a list and kwargs an object.", raw)
        if not (isinstance(job, str) and isinstance(job_id, str) and isinstance(queue, str)):
            wrong = [key for key in ("job", "id", "queue") if not isinstance(data[key], str)]
            raise DecodeError(f"The envelope's {', '.join(wrong)} must be strings.", raw)
        executions = get("executions", 0)
        if type(executions) is not int or executions < 0:  # parsed JSON: exact types (a bool is no int)
            raise DecodeError(
                f"The envelope's executions must be {int_at_least_rule(0)}, got {executions!r:.100}.", raw
            )
        context = get("ctx")
        if context is not None and not isinstance(context, dict):
            raise DecodeError(f"The envelope's ctx must be an object, got {type(context).__name__}.", raw)
        # The optional fields are null or text; checked inline, the helpers only where there is work or an error.
        enqueued_at = get("enqueued_at")
        if enqueued_at is not None:
            enqueued_at = _parse_time(enqueued_at, "enqueued_at", raw)
        scheduled_at = get("scheduled_at")
        if scheduled_at is not None:
            scheduled_at = _parse_time(scheduled_at, "scheduled_at", raw)
        locale = get("locale")
        if locale is not None and type(locale) is not str:
            _not_text(locale, "locale", raw)
        zone = get("timezone")
        if zone is not None and type(zone) is not str:
            _not_text(zone, "timezone", raw)
        return Envelope(  # positional: a dataclass builds faster so
            job,
            job_id,
            queue,
            args,
            kwargs,
            executions,
            enqueued_at,
            scheduled_at,
            locale,
            zone,
            ENVELOPE_VERSION,
            context,
        )


@cache
def _load(path: str) -> Serializer:
    try:
        return import_string(path)()  # type: ignore[no-any-return]
    except ImportError as exc:
        raise ConfigurationError(f"KAFKA_JOBS['SERIALIZER'] = {path!r} cannot be imported: {exc}") from exc


def get_serializer() -> Serializer:
    """Return the configured serializer instance."""
    return _load(get_settings().serializer)
