"""Job arguments <-> JSON-safe values.

Plain JSON values pass through; datetimes, decimals, UUIDs, tuples and model instances become tagged
objects ``{"_kj": tag, "v": value}``. Anything else raises ``EncodeError`` when the job is enqueued.
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


def _encode_model(value: models.Model) -> dict[str, Any]:
    if value.pk is None:
        raise EncodeError(
            f"Cannot pass an unsaved {type(value).__name__} instance to a job: it is sent by reference "
            "(app label, model, primary key). Save it first."
        )
    return {TAG: "model", "model": value._meta.label_lower, "pk": encode(value.pk)}


def _decode_model(obj: dict[str, Any]) -> models.Model:
    label = obj.get("model")
    try:
        model = apps.get_model(str(label))
    except (LookupError, ValueError) as exc:
        raise ArgumentLoadError(f"Argument refers to unknown model {label!r}: {exc}") from exc
    pk = decode(obj.get("pk"))
    try:
        return model._default_manager.get(pk=pk)
    except ObjectDoesNotExist as exc:
        raise ArgumentLoadError(f"{model._meta.label} with pk={pk!r} no longer exists.") from exc


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "datetime": lambda o: dt.datetime.fromisoformat(o["v"]),
    "date": lambda o: dt.date.fromisoformat(o["v"]),
    "time": lambda o: dt.time.fromisoformat(o["v"]),
    "timedelta": lambda o: dt.timedelta(microseconds=int(o["v"])),
    "decimal": lambda o: Decimal(o["v"]),
    "uuid": lambda o: uuid.UUID(o["v"]),
    "tuple": lambda o: tuple(decode(x) for x in o["v"]),
    "dict": lambda o: {k: decode(v) for k, v in o["v"].items()},
    "model": _decode_model,
}


def encode(value: Any) -> Any:
    """Return a JSON-safe form of ``value`` or raise ``EncodeError`` naming the unsupported type."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(f"Cannot serialize the float {value!r}: JSON has no NaN or infinity.")
        return value
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise EncodeError(f"Dict keys in job arguments must be str, got {type(key).__name__} {key!r}.")
        encoded = {k: encode(v) for k, v in value.items()}
        # A user dict that happens to contain the tag key is wrapped, so it can never pose as a tagged value.
        return {TAG: "dict", "v": encoded} if TAG in value else encoded
    if isinstance(value, tuple):
        return {TAG: "tuple", "v": [encode(v) for v in value]}
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
        return _encode_model(value)
    raise EncodeError(
        f"Cannot serialize a job argument of type {type(value).__module__}.{type(value).__qualname__}: "
        "use JSON types, datetime/date/time/timedelta, Decimal, UUID, tuples or saved model instances."
    )


def decode(value: Any) -> Any:
    """Invert ``encode``; raise ``DecodeError`` (or ``ArgumentLoadError`` for a missing row)."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(TAG)
        if tag is None:
            return {k: decode(v) for k, v in value.items()}
        decoder = _DECODERS.get(tag) if isinstance(tag, str) else None
        if decoder is None:
            raise DecodeError(f"Unknown argument tag {tag!r}.")
        try:
            return decoder(value)
        except DecodeError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise DecodeError(f"Malformed {tag} argument {value!r}: {exc}") from exc
    return value
