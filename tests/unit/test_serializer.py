"""The JSON envelope: a job round-trips through bytes; bad bytes are DecodeErrors that keep the raw value."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.test import override_settings
from django.utils import timezone, translation

from kafka_jobs import serializer as serializer_module
from kafka_jobs.arguments import MAX_DEPTH
from kafka_jobs.exceptions import (
    ArgumentLoadError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    JobNotRegistered,
    UnsupportedEnvelopeVersion,
)
from kafka_jobs.job import Job
from kafka_jobs.serializer import ENVELOPE_VERSION, Envelope, JsonSerializer, get_serializer
from tests.models import Widget


class EchoJob(Job):
    queue_as = "single"

    def perform(self, *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return args, kwargs


serializer = JsonSerializer()


def envelope_bytes(**overrides: Any) -> bytes:
    body = {
        "v": ENVELOPE_VERSION,
        "job": EchoJob.job_name,
        "id": str(uuid.uuid4()),
        "queue": "single",
        "args": [],
        "kwargs": {},
    }
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_job_round_trips_with_its_arguments_and_metadata() -> None:
    scheduled = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)
    args = [1, "two", dt.date(2024, 1, 2), Decimal("3.10"), (4, 5), {"_kj": "x"}]
    kwargs = {"when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "id": uuid.UUID(int=7)}
    job = EchoJob(*args, **kwargs)
    job.queue_name = "other"
    job.executions = 2
    job.scheduled_at = scheduled

    with translation.override("fr"), timezone.override("Europe/Paris"):
        raw = serializer.dumps(job)
    envelope = serializer.loads(raw)
    loaded = envelope.to_job()

    assert isinstance(raw, bytes)
    assert isinstance(loaded, EchoJob)
    assert loaded.args == args
    assert loaded.kwargs == kwargs
    assert loaded.job_id == job.job_id
    assert loaded.queue_name == "other"
    assert loaded.executions == 2
    assert loaded.scheduled_at == scheduled
    assert loaded.enqueued_at == job.enqueued_at
    assert loaded.enqueued_at is not None
    assert timezone.is_aware(loaded.enqueued_at)
    assert (loaded.locale, loaded.timezone) == ("fr", "Europe/Paris")


def test_dumps_keeps_locale_and_timezone_already_set_on_the_job() -> None:
    job = EchoJob()
    job.locale = "de"
    job.timezone = "Asia/Tokyo"

    envelope = serializer.loads(serializer.dumps(job))

    assert (envelope.locale, envelope.timezone) == ("de", "Asia/Tokyo")


def test_payload_is_compact_utf8_json_naming_the_registered_job() -> None:
    job = EchoJob("ünïcode")
    data = json.loads(serializer.dumps(job).decode("utf-8"))

    assert data["v"] == ENVELOPE_VERSION
    assert data["job"] == "tests.unit.test_serializer.EchoJob"
    assert data["id"] == job.job_id
    assert data["args"] == ["ünïcode"]


@pytest.mark.parametrize("bad", [{1, 2}, object(), float("nan"), {3: "int key"}])
def test_unsupported_argument_raises_encode_error_at_dumps(bad: Any) -> None:
    with pytest.raises(EncodeError):
        serializer.dumps(EchoJob(bad))
    with pytest.raises(EncodeError):
        serializer.dumps(EchoJob(key=bad))


def test_unsaved_model_argument_raises_encode_error_at_dumps() -> None:
    with pytest.raises(EncodeError, match="Save it first"):
        serializer.dumps(EchoJob(Widget(name="draft")))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (None, "tombstone"),
        (b"\xff\xfe garbage", "not UTF-8 JSON"),
        (b"{not json", "not UTF-8 JSON"),
        (b"", "not UTF-8 JSON"),
        (b"[1, 2]", "not an object: list"),
        (b'"text"', "not an object: str"),
        (b"42", "not an object: int"),
    ],
    ids=repr,
)
def test_undecodable_bytes_raise_decode_error_keeping_raw(raw: bytes | None, match: str) -> None:
    with pytest.raises(DecodeError, match=match) as info:
        serializer.loads(raw)

    assert info.value.raw == raw


@pytest.mark.parametrize("missing", ["job", "id", "queue", "args", "kwargs"])
def test_missing_field_raises_decode_error_naming_it(missing: str) -> None:
    raw = envelope_bytes(**{missing: ...})

    with pytest.raises(DecodeError, match=f"lacks the field.*'{missing}'") as info:
        serializer.loads(raw)

    assert info.value.raw == raw


@pytest.mark.parametrize(
    "overrides",
    [
        {"args": {"a": 1}},
        {"kwargs": [1]},
        {"job": 5},
        {"id": None},
        {"enqueued_at": "last tuesday"},
        {"scheduled_at": 12},
        {"locale": 123},
        {"locale": ["fr"]},
        {"timezone": ["Europe/Paris"]},
        {"timezone": {"name": "UTC"}},
        {"queue": {"name": "single"}},
        {"queue": 7},
        {"executions": "2"},
        {"executions": -1},
        {"executions": True},
        {"executions": 1.5},
    ],
    ids=repr,
)
def test_malformed_field_raises_decode_error(overrides: dict[str, Any]) -> None:
    raw = envelope_bytes(**overrides)

    with pytest.raises(DecodeError) as info:
        serializer.loads(raw)

    assert info.value.raw == raw


@pytest.mark.parametrize("version", [0, 2, "1", None, True, ...], ids=repr)
def test_unsupported_envelope_version_raises_keeping_raw(version: Any) -> None:
    raw = envelope_bytes(v=version)

    with pytest.raises(UnsupportedEnvelopeVersion, match="not supported") as info:
        serializer.loads(raw)

    assert info.value.raw == raw
    assert isinstance(info.value, DecodeError)


def test_minimal_envelope_gets_defaults() -> None:
    envelope = serializer.loads(envelope_bytes())

    assert envelope.executions == 0
    assert envelope.enqueued_at is None
    assert envelope.scheduled_at is None
    assert envelope.locale is None


def test_naive_times_in_a_message_are_read_as_utc() -> None:
    envelope = serializer.loads(envelope_bytes(enqueued_at="2024-01-02T03:04:05", scheduled_at="2030-01-01T00:00:00"))

    assert envelope.enqueued_at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert envelope.scheduled_at == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_enqueued_at_is_aware_even_without_use_tz(settings: Any) -> None:
    settings.USE_TZ = False

    envelope = serializer.loads(serializer.dumps(EchoJob()))

    assert envelope.enqueued_at is not None
    assert timezone.is_aware(envelope.enqueued_at)


def test_unknown_job_name_raises_job_not_registered_when_building_the_job() -> None:
    envelope = serializer.loads(envelope_bytes(job="os.system"))

    with pytest.raises(JobNotRegistered):
        envelope.to_job()


def test_malformed_argument_raises_decode_error_when_building_the_job() -> None:
    envelope = serializer.loads(envelope_bytes(args=[{"_kj": "uuid", "v": "no"}]))

    with pytest.raises(DecodeError):
        envelope.to_job()


@pytest.mark.django_db(transaction=True)
def test_model_argument_is_loaded_when_the_job_is_built() -> None:
    widget = Widget.objects.create(name="w")
    raw = serializer.dumps(EchoJob(widget, owner=widget))

    job = serializer.loads(raw).to_job()

    assert job.args == [widget]
    assert job.kwargs == {"owner": widget}


@pytest.mark.django_db(transaction=True)
def test_deleted_model_row_raises_argument_load_error_when_the_job_is_built() -> None:
    widget = Widget.objects.create(name="w")
    envelope: Envelope = serializer.loads(serializer.dumps(EchoJob(widget)))
    widget.delete()

    with pytest.raises(ArgumentLoadError):
        envelope.to_job()


class ConfiguredSerializer(JsonSerializer):
    """Not the default: only honouring KAFKA_JOBS['SERIALIZER'] gives an instance of it."""


def test_get_serializer_returns_the_configured_class() -> None:
    assert type(get_serializer()) is JsonSerializer  # the default

    with override_settings(KAFKA_JOBS={"SERIALIZER": f"{__name__}.ConfiguredSerializer"}):
        assert type(get_serializer()) is ConfiguredSerializer


def test_unimportable_serializer_is_a_configuration_error_naming_the_key() -> None:
    with (
        override_settings(KAFKA_JOBS={"SERIALIZER": "tests.nowhere.Serializer"}),
        pytest.raises(ConfigurationError, match=r"KAFKA_JOBS\['SERIALIZER'\]"),
    ):
        get_serializer()


def test_json_nested_too_deeply_to_parse_is_a_decode_error_in_bounded_time() -> None:
    raw = b'{"v":1,"args":' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    with pytest.raises(DecodeError, match="RecursionError") as info:
        serializer.loads(raw)

    assert info.value.raw == raw


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 5000])
def test_arguments_nested_too_deeply_are_a_decode_error_when_the_job_is_built(depth: int) -> None:
    nested: Any = []
    for _ in range(depth - 1):
        nested = [nested]
    raw = (
        envelope_bytes(args=[nested])
        if depth < 900
        else envelope_bytes().replace(b'"args": []', b'"args": [' + b"[" * depth + b"]" * depth + b"]")
    )

    with pytest.raises(DecodeError, match=r"nested|RecursionError"):
        serializer.loads(raw).to_job()


def test_arguments_nested_too_deeply_are_an_encode_error_at_dumps() -> None:
    nested: Any = []
    for _ in range(999):
        nested = [nested]
    cyclic: list[Any] = []
    cyclic.append(cyclic)

    with pytest.raises(EncodeError, match=f"at most {MAX_DEPTH} deep"):
        serializer.dumps(EchoJob(nested))
    with pytest.raises(EncodeError, match="contains itself"):
        serializer.dumps(EchoJob(cyclic))


class RestoreFails(Job):
    """A job class whose restore() raises something unexpected."""

    queue_as = "single"

    @classmethod
    def restore(cls, args: list[Any], kwargs: dict[str, Any], job_id: str) -> Job:  # type: ignore[override]
        raise RecursionError("bad class")

    def perform(self) -> None:
        """Never reached."""


@pytest.mark.parametrize(
    ("error", "may_pass"),
    [
        (OperationalError("database is down"), True),
        (InterfaceError("connection already closed"), True),
        (DatabaseError("generic"), True),
        (ConnectionRefusedError("no route"), True),
        (DataError("value too long"), False),
        (IntegrityError("duplicate"), False),
        (RecursionError("deep"), False),
        (ValueError("bad"), False),
    ],
    ids=repr,
)
def test_only_outages_may_pass_when_a_job_is_built(error: Exception, may_pass: bool) -> None:
    assert serializer_module.may_pass(error) is may_pass


def test_an_unexpected_error_building_the_job_becomes_a_decode_error_keeping_its_cause() -> None:
    raw = envelope_bytes(job=RestoreFails.job_name)

    with pytest.raises(DecodeError, match="RecursionError: bad class") as info:
        serializer.loads(raw).to_job()

    assert isinstance(info.value.__cause__, RecursionError)


def test_reset_executions_sets_the_run_count_to_zero_and_leaves_everything_else() -> None:
    data = {"v": ENVELOPE_VERSION, "job": "x", "id": "i", "queue": "q", "args": [1], "kwargs": {}, "executions": 3}
    raw = json.dumps(data).encode()
    reset = json.loads(JsonSerializer().reset_executions(raw))
    assert reset == {**data, "executions": 0}


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"executions": 0, "x": 1}', b'{"executions": "3"}'])
def test_reset_executions_returns_the_same_bytes_when_there_is_nothing_to_reset(raw: bytes) -> None:
    assert JsonSerializer().reset_executions(raw) is raw


# orjson behind the envelope: what the standard library wrote and read before means the same -------------


BIG_INTS = [2**64, -(2**63) - 1, 10**40, -(10**40)]
EDGE_INTS = [2**64 - 1, -(2**63), 0]


def test_ints_beyond_64_bits_travel_tagged_and_round_trip_exactly() -> None:
    job = EchoJob(*BIG_INTS, *EDGE_INTS, [10**30, (2**64,)], big=2**70, nested={"n": -(2**80)})

    raw = serializer.dumps(job)
    loaded = serializer.loads(raw).to_job()

    assert b'{"_kj":"int","v":"18446744073709551616"}' in raw
    assert b'"v":"-9223372036854775809"' in raw
    assert b",18446744073709551615,-9223372036854775808,0," in raw  # within 64 bits: plain numbers
    assert loaded.args == job.args
    assert loaded.kwargs == job.kwargs
    assert all(type(value) is int for value in loaded.args[:7])


def test_int_literals_beyond_64_bits_from_an_earlier_release_decode_exactly() -> None:
    # json.dumps writes them as plain numbers, as kafka_jobs did before orjson; orjson alone reads floats.
    raw = envelope_bytes(args=[*BIG_INTS, [2**64 + 1]], kwargs={"n": 10**19}, executions=2**64)

    envelope = serializer.loads(raw)
    job = envelope.to_job()

    assert job.args == [*BIG_INTS, [2**64 + 1]]
    assert job.kwargs == {"n": 10**19}
    assert all(type(value) is int for value in job.args[:4])
    assert envelope.executions == 2**64


def test_strings_with_lone_surrogates_round_trip() -> None:
    # orjson refuses to write them; the standard library's encoder escapes them, as it always did.
    job = EchoJob("a\ud800b", {"\udfff": "key"}, text="\udc00")

    raw = serializer.dumps(job)
    loaded = serializer.loads(raw).to_job()

    assert b"\\ud800" in raw
    assert loaded.args == job.args
    assert loaded.kwargs == job.kwargs


def nan_aware(value: Any) -> str:
    """``repr``, which tells NaN, 0.0 and -0.0, 1 and 1.0 apart and equals NaN with itself."""
    return repr(value)


@pytest.mark.parametrize(
    "raw",
    [
        envelope_bytes(args=[float("nan"), float("inf"), float("-inf")], kwargs={"x": float("nan")}),
        b"\xef\xbb\xbf" + envelope_bytes(args=["caf\u00e9"]),
        envelope_bytes(args=["\ud800", "x\udfffy"]),  # lone surrogates as \u escapes
        envelope_bytes(args=["caf\u00e9"]).replace(b"\\u00e9", b"\xed\xa0\x80"),  # a surrogate encoded as UTF-8
        envelope_bytes(args=["caf\u00e9"]).decode().encode("utf-16"),
        envelope_bytes(args=[1e400, -1e400, 1e-400, 0.1000000000000000055511151231257827]),
        envelope_bytes(args=[0.1, -0.0, 1.5e300, 123456789012345678, 1e16]),
    ],
    ids=["nan-infinity", "utf8-bom", "lone-surrogate-escapes", "utf8-surrogate", "utf16", "extreme-floats", "floats"],
)
def test_a_message_the_standard_library_read_decodes_as_it_did(raw: bytes) -> None:
    expected = json.loads(raw)

    envelope = serializer.loads(raw)
    job = envelope.to_job()

    assert nan_aware(job.args) == nan_aware(expected["args"])
    assert nan_aware(job.kwargs) == nan_aware(expected["kwargs"])


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 254, 255, 256, 1023, 1024, 1025, 1030, 5000, 100_000])
def test_json_nested_around_orjsons_depth_limits_is_a_decode_error(depth: int) -> None:
    args = b"[" * depth + b"]" * depth
    raw = envelope_bytes().replace(b'"args": []', b'"args": [' + args + b"]")

    try:
        envelope = serializer.loads(raw)
    except DecodeError as exc:
        assert depth + 2 > 1024, "orjson reads 1024 levels (the envelope and args are two)"
        assert isinstance(exc.__cause__, RecursionError)  # beyond: json.loads, whose recursion limit may refuse
        assert exc.raw == raw
        return
    with pytest.raises(DecodeError, match=f"at most {MAX_DEPTH} deep"):
        envelope.to_job()


class Key(str):
    """A str subclass (as Django's SafeString is): orjson refuses it as a dict key."""


def test_dict_keys_of_a_str_subclass_are_written_as_before() -> None:
    job = EchoJob({Key("k"): 1}, nested=[{Key("j"): "\u00e9"}])

    loaded = serializer.loads(serializer.dumps(job)).to_job()

    assert loaded.args == [{"k": 1}]
    assert loaded.kwargs == {"nested": [{"j": "\u00e9"}]}


@pytest.mark.parametrize(
    "context",
    [{"t": float("nan")}, {"t": [float("inf")]}, {"t": dt.datetime(2024, 1, 2)}, {"t": uuid.UUID(int=1)}, {"t": {1}}],
    ids=repr,
)
def test_a_context_json_cannot_carry_is_an_encode_error(context: dict[str, Any]) -> None:
    # orjson would write NaN as null and datetimes and UUIDs as text; the standard library refused them.
    job = EchoJob()
    job.context = context

    with pytest.raises(EncodeError):
        serializer.dumps(job)


def test_a_context_is_written_as_the_standard_library_wrote_it() -> None:
    job = EchoJob()
    job.context = {"tenant": "acme", "ids": [1, 2**70, (2, 3)], "3": {4: "int key", "s": "\ud800"}}

    envelope = serializer.loads(serializer.dumps(job))

    assert envelope.context == {"tenant": "acme", "ids": [1, 2**70, [2, 3]], "3": {"4": "int key", "s": "\ud800"}}


def test_a_job_that_changes_its_arguments_leaves_the_envelope_as_it_was() -> None:
    envelope = serializer.loads(serializer.dumps(EchoJob(1, "a", key="v")))

    job = envelope.to_job()
    job.args.append(2)
    job.kwargs["other"] = 3

    assert (envelope.args, envelope.kwargs) == ([1, "a"], {"key": "v"})
    assert envelope.to_job().args == [1, "a"]


def test_reset_executions_keeps_a_message_of_this_release_as_it_was() -> None:
    job = EchoJob("caf\u00e9", 2**70, when=dt.date(2024, 1, 2))
    job.executions = 4
    raw = serializer.dumps(job)

    reset = serializer.loads(JsonSerializer().reset_executions(raw))

    assert reset.executions == 0
    assert reset.to_job().args == ["caf\u00e9", 2**70]
    assert reset.to_job().kwargs == {"when": dt.date(2024, 1, 2)}
