"""Job arguments <-> JSON-safe values: every supported type round-trips; anything else fails at encode."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from kafka_jobs.arguments import MAX_DEPTH, TAG, decode, encode
from kafka_jobs.exceptions import ArgumentLoadError, DecodeError, EncodeError
from tests.helpers import param_id
from tests.models import Widget

UTC = dt.UTC
PLUS_2 = dt.timezone(dt.timedelta(hours=2))


def roundtrip(value: Any) -> Any:
    """Encode, go through JSON text as a message does, decode."""
    return decode(json.loads(json.dumps(encode(value), allow_nan=False)))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -17,
        2**70,
        1.5,
        "",
        "héllo ✓",
        [],
        {},
        [1, "two", None, 3.0],
        {"a": 1, "b": [True, None]},
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        dt.datetime(2024, 3, 1, 8, 30, tzinfo=PLUS_2),
        dt.datetime(2024, 3, 1, 8, 30),
        dt.date(1999, 12, 31),
        dt.time(7, 5, 3, 120),
        dt.time(7, 5, tzinfo=PLUS_2),
        dt.timedelta(days=3, seconds=5, microseconds=7),
        dt.timedelta(0),
        dt.timedelta(microseconds=-1),
        dt.timedelta(days=-2, hours=3),
        Decimal("0.1"),
        Decimal("-12345678901234567890.000000001"),
        Decimal("1E+3"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        (),
        (1, "a"),
        (1, (2, (3,))),
        [(1, 2), {"t": (dt.date(2020, 1, 1),)}],
        {"outer": {"inner": [Decimal("2.50"), {"deep": uuid.UUID(int=1)}]}},
    ],
    ids=repr,
)
def test_supported_value_round_trips_with_its_type(value: Any) -> None:
    result = roundtrip(value)

    assert result == value
    assert type(result) is type(value)


def test_aware_datetime_keeps_its_offset_and_naive_stays_naive() -> None:
    aware = roundtrip(dt.datetime(2024, 3, 1, 8, 30, tzinfo=PLUS_2))
    naive = roundtrip(dt.datetime(2024, 3, 1, 8, 30))

    assert aware.utcoffset() == dt.timedelta(hours=2)
    assert naive.tzinfo is None


def test_datetime_is_not_decoded_as_a_date() -> None:
    assert isinstance(roundtrip(dt.date(2020, 1, 1)), dt.date)
    assert not isinstance(roundtrip(dt.date(2020, 1, 1)), dt.datetime)
    assert isinstance(roundtrip(dt.datetime(2020, 1, 1)), dt.datetime)


def test_decimal_keeps_its_exponent() -> None:
    assert str(roundtrip(Decimal("2.50"))) == "2.50"


def test_tuple_nested_in_list_stays_a_tuple() -> None:
    assert roundtrip([(1, 2), [3]]) == [(1, 2), [3]]
    assert isinstance(roundtrip([(1, 2)])[0], tuple)


@pytest.mark.parametrize(
    "value",
    [
        {TAG: "model", "model": "tests.widget", "pk": 1},
        {TAG: "datetime", "v": "not a date"},
        {TAG: None, "x": 1},
        {TAG: 5},
        {"nested": {TAG: "uuid", "v": "x"}},
    ],
    ids=repr,
)
def test_dict_containing_the_reserved_key_round_trips_as_a_plain_dict(value: Any) -> None:
    assert roundtrip(value) == value


def test_bool_is_not_encoded_as_int() -> None:
    assert encode(True) is True
    assert roundtrip([True, 1]) == [True, 1]
    assert type(roundtrip([True, 1])[0]) is bool


# Refused at encode time ----------------------------------------------------------------------------------


class Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({1, 2}, "builtins.set"),
        (frozenset(), "frozenset"),
        (Opaque(), "Opaque"),
        (b"bytes", "bytes"),
        (float("nan"), "NaN"),
        (float("inf"), "infinity"),
        ([1, {"x": float("-inf")}], "infinity"),
        ({1: "a"}, "Dict keys .* must be str, got int 1"),
        ({("a", "b"): 1}, "must be str"),
        ({"ok": {None: 1}}, "must be str"),
        (object, "type"),
    ],
    ids=param_id,
)
def test_unsupported_value_raises_encode_error(value: Any, match: str) -> None:
    with pytest.raises(EncodeError, match=match):
        encode(value)


def test_encode_error_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        encode({1, 2})


# Malformed input at decode time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {TAG: "pickle", "v": "..."},
        {TAG: ["unhashable"], "v": 1},
        {TAG: "datetime", "v": "yesterday"},
        {TAG: "datetime"},
        {TAG: "date", "v": 20200101},
        {TAG: "timedelta", "v": "soon"},
        {TAG: "decimal", "v": "one"},
        {TAG: "uuid", "v": "xyz"},
        {TAG: "tuple", "v": 5},
        {TAG: "dict", "v": [1, 2]},
        {TAG: "dict", "v": "text"},
        [{TAG: "uuid", "v": None}],
    ],
    ids=repr,
)
def test_malformed_tagged_value_raises_decode_error(value: Any) -> None:
    with pytest.raises(DecodeError):
        decode(value)


# Model instances by reference ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_model_instance_is_sent_by_reference_and_loaded_again() -> None:
    widget = Widget.objects.create(name="sprocket")

    encoded = encode(widget)
    Widget.objects.filter(pk=widget.pk).update(name="renamed")
    loaded = decode(json.loads(json.dumps(encoded)))

    assert encoded == {TAG: "model", "model": "tests.widget", "pk": widget.pk}
    assert isinstance(loaded, Widget)
    assert loaded.pk == widget.pk
    assert loaded.name == "renamed"  # fetched when decoded, not a snapshot


@pytest.mark.django_db(transaction=True)
def test_model_instances_nested_in_containers_round_trip() -> None:
    first = Widget.objects.create(name="a")
    second = Widget.objects.create(name="b")

    assert roundtrip({"widgets": [first, (second,)]}) == {"widgets": [first, (second,)]}


def test_unsaved_model_instance_raises_encode_error() -> None:
    with pytest.raises(EncodeError, match="unsaved Widget"):
        encode(Widget(name="draft"))


@pytest.mark.django_db(transaction=True)
def test_deleted_row_raises_argument_load_error() -> None:
    widget = Widget.objects.create(name="gone")
    encoded = encode(widget)
    widget.delete()

    with pytest.raises(ArgumentLoadError, match="no longer exists"):
        decode(encoded)


def test_unknown_model_raises_argument_load_error() -> None:
    with pytest.raises(ArgumentLoadError, match="unknown model"):
        decode({TAG: "model", "model": "nope.missing", "pk": 1})


def test_argument_load_error_is_a_decode_error() -> None:
    assert issubclass(ArgumentLoadError, DecodeError)


# Nesting depth -------------------------------------------------------------------------------------------


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else (value,) if kind == "tuple" else {"k": value}
    return value


@pytest.mark.parametrize("kind", ["list", "tuple", "dict"])
def test_arguments_nested_up_to_the_limit_round_trip_and_deeper_ones_are_refused(kind: str) -> None:
    deepest = nested(MAX_DEPTH, dt.datetime(2024, 1, 2, 3, 4), kind)  # a tagged leaf at the deepest level

    assert roundtrip(deepest) == deepest
    with pytest.raises(EncodeError, match=f"at most {MAX_DEPTH} deep"):
        encode(nested(MAX_DEPTH + 1, 1, kind))
    with pytest.raises(EncodeError, match=f"at most {MAX_DEPTH} deep"):
        encode(nested(5000, 1, kind))  # no RecursionError


def test_a_container_that_contains_itself_is_an_encode_error() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic

    with pytest.raises(EncodeError, match="contains itself"):
        encode(cyclic)


@pytest.mark.parametrize(
    "value",
    [
        nested(MAX_DEPTH + 1),
        nested(MAX_DEPTH + 1, kind="dict"),
        json.loads(json.dumps(encode(nested(MAX_DEPTH, kind="tuple"))).replace('"v": [1]', '"v": [[1]]')),
        nested(800),
    ],
    ids=["list", "dict", "tagged-tuple", "800-deep"],
)
def test_arguments_nested_too_deeply_are_a_decode_error(value: Any) -> None:
    with pytest.raises(DecodeError, match=f"at most {MAX_DEPTH} deep"):
        decode(value)


# Ints beyond 64 bits, and the fast paths for plain scalars -----------------------------------------------


def short_id(value: object) -> str:
    return repr(value)[:40]


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**40, -(10**300)], ids=short_id)
def test_ints_beyond_64_bits_are_tagged_decimal_text_and_round_trip_exactly(value: int) -> None:
    assert encode(value) == {TAG: "int", "v": str(value)}
    assert encode([value]) == [{TAG: "int", "v": str(value)}]
    assert roundtrip(value) == value
    assert type(roundtrip(value)) is int


@pytest.mark.parametrize("value", [2**64 - 1, -(2**63), 0, -1], ids=repr)
def test_ints_within_64_bits_stay_plain_numbers(value: int) -> None:
    assert encode(value) is value
    assert encode({"n": value}) == {"n": value}


@pytest.mark.parametrize("value", [dt.timedelta.max, dt.timedelta.min, dt.timedelta(days=-300_000_000)], ids=repr)
def test_timedeltas_beyond_64_bits_of_microseconds_round_trip(value: dt.timedelta) -> None:
    assert encode(value)["v"][TAG] == "int"
    assert roundtrip(value) == value


def test_an_int_too_long_to_format_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="int of 16610 bits"):
        encode(10**5000)


@pytest.mark.parametrize(
    "value",
    [
        {TAG: "int", "v": 5},
        {TAG: "int", "v": "1.5"},
        {TAG: "int", "v": " 1"},
        {TAG: "int", "v": "+1"},
        {TAG: "int", "v": "1_000"},
        {TAG: "int", "v": "\u0663"},  # int() reads Arabic-Indic digits; the encoder never writes them
        {TAG: "int", "v": "9" * 5000},
        {TAG: "int"},
        {TAG: "timedelta", "v": {TAG: "int", "v": "x"}},
        {TAG: "timedelta", "v": {TAG: "uuid", "v": "12345678-1234-5678-1234-567812345678"}},
    ],
    ids=short_id,
)
def test_malformed_int_tag_raises_decode_error(value: Any) -> None:
    with pytest.raises(DecodeError, match="Malformed"):
        decode(value)


class Ratio(float):
    """A float subclass, as numpy's float64 is: orjson refuses to write those."""


class Level(enum.IntEnum):
    HIGH = 2**70


def test_subclasses_of_float_and_int_encode_as_plain_values() -> None:
    assert type(encode(Ratio(0.5))) is float
    assert encode([Ratio(0.5), Level.HIGH]) == [0.5, {TAG: "int", "v": str(2**70)}]


@pytest.mark.parametrize(
    "value",
    [[1, "a", float("nan")], [None, float("inf")], {"a": 1, "b": float("-inf")}, {"a": 1, 2: "b"}],
    ids=repr,
)
def test_flat_arguments_are_checked_like_nested_ones(value: Any) -> None:
    with pytest.raises(EncodeError):
        encode(value)


@pytest.mark.parametrize("value", [[1, "a", None, 2.5, True], {"a": 1, "b": "c"}], ids=repr)
def test_decoded_containers_are_new_objects(value: Any) -> None:
    decoded = decode(value)

    assert decoded == value
    assert decoded is not value  # a job that changes its arguments does not change the envelope's
