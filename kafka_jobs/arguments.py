"""Job arguments <-> JSON-safe values.

Plain JSON values pass through; datetimes, decimals, UUIDs, tuples and model instances become tagged
objects ``{"_kj": tag, "v": value}``. Anything else raises ``EncodeError`` when the job is enqueued.

Ints outside ``[-2**63, 2**64)`` become ``{"_kj": "int", "v": "<decimal digits>"}``: the envelope's JSON
library (orjson) cannot write them, and a reader that parses numbers into 64-bit ints or doubles would
silently lose their precision. Earlier releases wrote them as plain numbers; such messages still decode
exactly (``kafka_jobs.serializer`` reads them with the standard library), but a worker of an earlier
release refuses a message carrying the tag (unknown tag: a poison message).

Arguments made only of plain scalars (str, bool, None, ints in that range, finite floats) are not walked:
``encode`` and ``decode`` check them in one pass.

Containers (lists, dicts, tuples) may be nested ``MAX_DEPTH`` deep: deeper arguments (or a container that
contains itself) raise ``EncodeError`` at enqueue and ``DecodeError`` when read, in bounded time, rather
than exhausting the interpreter's recursion limit. A tag's wrapper does not count as a level, so whatever
encodes also decodes.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable, Iterable
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
# Ints JSON carries as plain numbers: orjson writes and reads exactly this range; others are tagged.
INT_MIN = -(2**63)
INT_LIMIT = 2**64
_DECIMAL_INT = re.compile(r"-?[0-9]+")
_CONTAINERS = (list, dict)  # what decode must walk in a JSON value


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


def _encode_int(value: int) -> Any:
    """Return ``value`` if JSON carries it as a plain number, else its tagged decimal text."""
    if INT_MIN <= value < INT_LIMIT:
        return value
    try:
        text = str(int(value))  # int(): a subclass (IntEnum) may format itself differently
    except ValueError as exc:  # more digits than sys.get_int_max_str_digits(), as json.dumps refused
        raise EncodeError(f"Cannot serialize an int of {value.bit_length()} bits: {exc}") from exc
    return {TAG: "int", "v": text}


def _decode_int(obj: dict[str, Any]) -> int:
    text = _text(obj)
    if _DECIMAL_INT.fullmatch(text) is None:
        raise ValueError(f"expected decimal digits, got {text[:100]!r}")
    return int(text)


def _microseconds(obj: dict[str, Any]) -> int:
    value = obj["v"]
    if isinstance(value, dict) and value.get(TAG) == "int":  # 292,000 years and more
        return _decode_int(value)
    return _items(obj, int)  # type: ignore[no-any-return]


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
    "int": lambda o, _: _decode_int(o),
    "timedelta": lambda o, _: dt.timedelta(microseconds=_microseconds(o)),
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


def _plain(values: Iterable[Any]) -> bool:
    """Whether ``encode`` returns each of ``values`` unchanged, with nothing to walk.

    Exact types only (a subclass such as ``IntEnum`` or a numpy float takes the full path). One loop without
    calls: this runs for the arguments of every job.
    """
    for value in values:
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is int:
            if INT_MIN <= value < INT_LIMIT:
                continue
            return False
        if kind is not float or value - value != 0.0:  # x - x is 0.0 for a finite float, NaN for NaN or infinity
            return False
    return True


def plain_dict(value: dict[Any, Any]) -> bool:
    """Whether ``value`` maps str keys (not the tag) to plain scalars: ``encode`` returns it unchanged, and
    orjson writes it as the standard library does."""
    if TAG in value:
        return False
    for key in value:
        if type(key) is not str:
            return False
    return _plain(value.values())


def encode(value: Any, depth: int = 0) -> Any:
    """Return a JSON-safe form of ``value`` or raise ``EncodeError`` naming the unsupported type.

    ``depth`` counts the containers ``value`` is in (``MAX_DEPTH`` at most). A list or dict holding only
    plain scalars is returned itself, not a copy.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return _encode_int(value)
    if depth < MAX_DEPTH and ((kind is list and _plain(value)) or (kind is dict and plain_dict(value))):
        return value
    return _encode_other(value, depth)


def _encode_other(value: Any, depth: int) -> Any:
    """``encode`` for what its fast paths leave: containers to walk, other types, subclasses."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):  # an int subclass (bool cannot be subclassed)
        return _encode_int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(f"Cannot serialize the float {value!r}: JSON has no NaN or infinity.")
        return value if type(value) is float else float(value)  # orjson refuses float subclasses
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
        microseconds = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
        return {TAG: "timedelta", "v": _encode_int(microseconds)}
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
    Containers are always new objects, so a job that changes its arguments never changes the envelope's.
    """
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            _nested(value, depth)
        for item in value:
            if isinstance(item, _CONTAINERS):
                return [decode(v, depth + 1) for v in value]
        return list(value)  # only scalars: nothing to decode
    if isinstance(value, dict):
        tag = value.get(TAG)
        if tag is None:
            if depth >= MAX_DEPTH:
                _nested(value, depth)
            for item in value.values():
                if isinstance(item, _CONTAINERS):
                    return {k: decode(v, depth + 1) for k, v in value.items()}
            return dict(value)
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


def encode_args(args: list[Any], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Encode a job's args and kwargs for its envelope (which is not a level of nesting).

    Plain ones (the usual ids and names) are checked in one pass each and returned themselves.
    """
    return (
        args if type(args) is list and _plain(args) else encode(args, ARGUMENTS_DEPTH),
        kwargs if type(kwargs) is dict and plain_dict(kwargs) else encode(kwargs, ARGUMENTS_DEPTH),
    )


def decode_args(args: Any, kwargs: Any) -> tuple[Any, Any]:
    """Invert ``encode_args`` (the envelope's args and kwargs, as parsed); see ``decode``.

    Plain ones are copied after one pass each.
    """
    return (
        list(args) if type(args) is list and _scalars(args) else decode(args, ARGUMENTS_DEPTH),
        dict(kwargs)
        if type(kwargs) is dict and TAG not in kwargs and _scalars(kwargs.values())
        else decode(kwargs, ARGUMENTS_DEPTH),
    )


def _scalars(values: Iterable[Any]) -> bool:
    """Whether none of ``values`` is a container (so ``decode`` returns each unchanged)."""
    for value in values:  # noqa: SIM110 - all() over a generator costs twice as much, for every job
        if isinstance(value, _CONTAINERS):
            return False
    return True
