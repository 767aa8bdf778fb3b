"""Job arguments <-> JSON-safe values.

Plain JSON values pass through; datetimes, decimals, UUIDs, tuples and model instances become tagged
objects ``{"_kj": tag, "v": value}``. Anything else raises ``EncodeError`` when the job is enqueued.

Containers (lists, dicts, tuples) may be nested ``MAX_DEPTH`` deep: deeper arguments (or a container that
contains itself) raise ``EncodeError`` at enqueue and ``DecodeError`` when read, in bounded time, rather
than exhausting the interpreter's recursion limit. A tag's wrapper does not count as a level, so whatever
encodes also decodes.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.db import models

from .exceptions import ArgumentLoadError, DecodeError, EncodeError

TAG = "_kj"
MAX_DEPTH = 100  # nested containers in one argument
# The envelope's args list and kwargs dict hold the arguments; they are not a level of nesting.
ARGUMENTS_DEPTH = -1


def _encode_model(value: models.Model, depth: int) -> dict[str, Any]:
    if value.pk is None:
        raise EncodeError(
            f"Cannot pass an unsaved {type(value).__name__} instance to a job: it is sent by reference "
            "(app label, model, primary key). Save it first."
        )
    return {TAG: "model", "model": value._meta.label_lower, "pk": encode(value.pk, depth)}


def _decode_model(obj: dict[str, Any], depth: int) -> models.Model:
    label = obj.get("model")
    if not isinstance(label, str):
        raise DecodeError(f"A model argument names its model with {type(label).__name__} {label!r}, not a string.")
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise ArgumentLoadError(f"Argument refers to unknown model {label!r}: {exc}") from exc
    pk = decode(obj.get("pk"), depth)
    try:
        return model._default_manager.get(pk=pk)
    except ObjectDoesNotExist as exc:
        raise ArgumentLoadError(f"{model._meta.label} with pk={pk!r} no longer exists.") from exc


def _text(obj: dict[str, Any]) -> str:
    value = obj["v"]
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _items(obj: dict[str, Any], kind: type) -> Any:
    value = obj["v"]
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


# Each decoder gets the tagged object and the depth of the container it stands for.
_DECODERS: dict[str, Callable[[dict[str, Any], int], Any]] = {
    "datetime": lambda o, _: dt.datetime.fromisoformat(_text(o)),
    "date": lambda o, _: dt.date.fromisoformat(_text(o)),
    "time": lambda o, _: dt.time.fromisoformat(_text(o)),
    "timedelta": lambda o, _: dt.timedelta(microseconds=_items(o, int)),
    "decimal": lambda o, _: Decimal(_text(o)),
    "uuid": lambda o, _: uuid.UUID(_text(o)),
    "tuple": lambda o, depth: tuple(decode(x, depth + 1) for x in _items(_nested(o, depth), list)),
    "dict": lambda o, depth: {k: decode(v, depth + 1) for k, v in _items(_nested(o, depth), dict).items()},
    "model": _decode_model,
}


def _too_deep(value: Any) -> str:
    return (
        f"Job arguments may nest lists, dicts and tuples at most {MAX_DEPTH} deep; this {type(value).__name__} "
        "is nested deeper"
    )


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _nested(container: Any, depth: int) -> Any:
    """Return ``container`` if it may be decoded at ``depth``; raise ``DecodeError`` if it is nested too deeply."""
    if depth >= MAX_DEPTH:
        raise DecodeError(f"{_too_deep(container)}: the message was not written by kafka_jobs' encoder.")
    return container


def encode(value: Any, depth: int = 0) -> Any:
    """Return a JSON-safe form of ``value`` or raise ``EncodeError`` naming the unsupported type.

    ``depth`` counts the containers ``value`` is in (``MAX_DEPTH`` at most).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(f"Cannot serialize the float {value!r}: JSON has no NaN or infinity.")
        return value
    if isinstance(value, list | dict | tuple) and depth >= MAX_DEPTH:
        raise EncodeError(f"{_too_deep(value)} (or contains itself). Pass a flatter structure, or an id to load.")
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise EncodeError(f"Dict keys in job arguments must be str, got {type(key).__name__} {key!r}.")
        encoded = {k: encode(v, depth + 1) for k, v in value.items()}
        # A user dict that happens to contain the tag key is wrapped, so it can never pose as a tagged value.
        return {TAG: "dict", "v": encoded} if TAG in value else encoded
    if isinstance(value, tuple):
        return {TAG: "tuple", "v": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {TAG: "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {TAG: "timedelta", "v": (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "v": str(value)}
    if isinstance(value, models.Model):
        return _encode_model(value, depth)
    raise EncodeError(
        f"Cannot serialize a job argument of type {type(value).__module__}.{type(value).__qualname__}: "
        "use JSON types, datetime/date/time/timedelta, Decimal, UUID, tuples or saved model instances."
    )


def decode(value: Any, depth: int = 0) -> Any:
    """Invert ``encode``; raise ``DecodeError`` (or ``ArgumentLoadError`` for a missing row).

    Errors that may pass (the database is down while a model argument is loaded) propagate unchanged.
    """
    if isinstance(value, list):
        return [decode(v, depth + 1) for v in _nested(value, depth)]
    if isinstance(value, dict):
        tag = value.get(TAG)
        if tag is None:
            return {k: decode(v, depth + 1) for k, v in _nested(value, depth).items()}
        decoder = _DECODERS.get(tag) if isinstance(tag, str) else None
        if decoder is None:
            raise DecodeError(f"Unknown argument tag {_short(tag)}.")
        try:
            return decoder(value, depth)
        except DecodeError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise DecodeError(f"Malformed {tag} argument {_short(value)}: {exc}") from exc
    return value
