"""Fuzzing the message decoder: whatever bytes arrive, turning them into a job returns a job or raises a
poison error (``DecodeError``, ``JobNotRegistered``), in bounded time; arguments that encode also decode.

``KAFKA_JOBS_FUZZ_EXAMPLES`` sets the number of examples per property (default 100).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_jobs.arguments import MAX_DEPTH, TAG, decode, encode
from kafka_jobs.exceptions import DecodeError, EncodeError, JobNotRegistered
from kafka_jobs.execution import worker_thread_context
from kafka_jobs.job import Job
from kafka_jobs.serializer import ENVELOPE_VERSION, JsonSerializer, may_pass

EXAMPLES = int(os.environ.get("KAFKA_JOBS_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=dt.timedelta(seconds=5),  # a generous bound per example: "never hangs", not a speed test
    database=None,  # no .hypothesis directory in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TAGS = ["datetime", "date", "time", "timedelta", "decimal", "uuid", "tuple", "dict", "model"]


class FuzzJob(Job):
    """A registered job for envelopes to name."""

    queue_as = "single"
    job_name = "fuzz.FuzzJob"

    def perform(self, *args: Any, **kwargs: Any) -> None:
        """Never run: only decoded."""


def decode_job(raw: bytes | None) -> Job | None:
    """Decode ``raw`` as the worker does; return the job, or ``None`` for a poison message."""
    try:
        return JsonSerializer().loads(raw).to_job()
    except (DecodeError, JobNotRegistered):
        return None
    except Exception as exc:  # only an error that may pass is allowed through
        assert may_pass(exc), f"{type(exc).__name__}: {exc}"
        return None


def nest(value: Any, depth: int, kind: str) -> Any:
    """Wrap ``value`` in ``depth`` lists, plain dicts or tagged tuples."""
    for _ in range(depth):
        if kind == "list":
            value = [value]
        elif kind == "dict":
            value = {"k": value}
        else:
            value = {TAG: "tuple", "v": [value]}
    return value


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)
tagged = st.fixed_dictionaries(
    {TAG: st.sampled_from([*TAGS, "bogus"]) | json_values, "v": json_values},
    optional={
        "model": st.sampled_from(["tests.widget", "auth.user", "nope.nope", "x"]) | json_values,
        "pk": json_values,
    },
)
arguments = st.recursive(
    json_scalars | tagged,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=4), children, max_size=3)
        | st.builds(
            lambda v, tag: {TAG: tag, "v": v}, st.lists(children, max_size=3), st.sampled_from(["tuple", "dict"])
        )
    ),
    max_leaves=15,
)
deep = st.builds(nest, json_scalars, st.integers(0, 3 * MAX_DEPTH), st.sampled_from(["list", "dict", "tuple"]))


supported = st.recursive(
    json_scalars
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=4) | st.just(TAG), children, max_size=3)
    ),
    max_leaves=15,
)
# Arguments as a message carries them: mostly what kafka_jobs writes, sometimes anything at all.
message_arguments = st.one_of(supported.map(encode), supported.map(encode), arguments, deep)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """An envelope naming a registered job, with fields that may be missing, mistyped or hostile."""
    body: dict[str, Any] = {
        "v": ENVELOPE_VERSION,
        "job": draw(st.sampled_from([FuzzJob.job_name, FuzzJob.job_name, "fuzz.Unknown"])),
        "id": str(uuid.uuid4()),
        "queue": "single",
        "args": draw(st.lists(message_arguments, max_size=3)),
        "kwargs": draw(st.dictionaries(st.text(max_size=5), message_arguments, max_size=3)),
        "executions": draw(st.integers(0, 5)),
        "enqueued_at": draw(st.none() | st.datetimes().map(dt.datetime.isoformat)),
        "scheduled_at": None,
        "locale": draw(st.none() | st.sampled_from(["en-us", "fr", "de-at"]) | st.text(max_size=10)),
        "timezone": draw(st.none() | st.sampled_from(["UTC", "Europe/Paris"]) | st.text(max_size=10)),
    }
    for key in draw(st.sets(st.sampled_from(sorted(body)), max_size=2)):
        if draw(st.booleans()):
            body[key] = draw(json_values)
        else:
            del body[key]
    return json.dumps(body).encode()


# What each envelope field may hold; anything else makes the message poison.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "job": (str,),
    "id": (str,),
    "queue": (str,),
    "args": (list,),
    "kwargs": (dict,),
    "executions": (int,),
    "enqueued_at": (str, type(None)),
    "scheduled_at": (str, type(None)),
    "locale": (str, type(None)),
    "timezone": (str, type(None)),
}


@FUZZ
@given(st.sampled_from(sorted(FIELD_TYPES)), json_values)
def test_an_envelope_field_of_the_wrong_type_makes_the_message_poison(field: str, value: Any) -> None:
    allowed = FIELD_TYPES[field]
    wrong = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
    body = json.loads(JsonSerializer().dumps(FuzzJob(1, "two")))
    body[field] = value

    job = decode_job(json.dumps(body).encode())

    if wrong:
        assert job is None, f"{field}={value!r} was accepted"


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_to_a_job_or_a_poison_error(raw: bytes) -> None:
    decode_job(raw)


@FUZZ
@given(json_values)
def test_arbitrary_json_decodes_to_a_job_or_a_poison_error(value: Any) -> None:
    decode_job(json.dumps(value).encode())


@pytest.mark.django_db
@FUZZ
@given(envelopes())
def test_hostile_envelopes_decode_to_a_job_or_a_poison_error(raw: bytes) -> None:
    job = decode_job(raw)
    if job is not None:  # whatever was accepted is what the job will see: typed as documented
        assert isinstance(job.args, list) and isinstance(job.kwargs, dict)
        assert job.locale is None or isinstance(job.locale, str)
        assert job.timezone is None or isinstance(job.timezone, str)
        assert isinstance(job.executions, int) and job.executions >= 0


@FUZZ
@given(st.integers(0, 50_000), st.sampled_from(["[", '{"a":', '{"_kj":"tuple","v":[']))
def test_json_nested_any_depth_is_decoded_or_refused_in_bounded_time(depth: int, opener: str) -> None:
    closer = {"[": "]", '{"a":': "}", '{"_kj":"tuple","v":[': "]}"}[opener]
    args = opener * depth + "1" + closer * depth
    raw = f'{{"v":1,"job":"{FuzzJob.job_name}","id":"i","queue":"single","args":[{args}],"kwargs":{{}}}}'.encode()

    job = decode_job(raw)

    assert (job is not None) == (depth <= MAX_DEPTH)


@FUZZ
@given(st.text(max_size=300), st.text(max_size=300))
def test_any_locale_or_timezone_text_is_applied_or_ignored_never_raised(locale: str, zone: str) -> None:
    job = FuzzJob()
    job.locale, job.timezone = locale, zone

    with worker_thread_context(job):
        pass

    assert translation.get_language() == django_settings.LANGUAGE_CODE.lower()
    assert timezone.get_current_timezone_name() == django_settings.TIME_ZONE


@FUZZ
@given(supported, st.integers(0, MAX_DEPTH + 5))
def test_arguments_round_trip_up_to_the_depth_limit_and_are_refused_beyond(value: Any, depth: int) -> None:
    nested = nest(value, depth, "list")
    try:
        encoded = encode(nested)
    except EncodeError:
        assert _depth(nested) > MAX_DEPTH
        return
    assert _depth(nested) <= MAX_DEPTH
    decoded = decode(json.loads(json.dumps(encoded, allow_nan=False)))
    assert decoded == nested
    assert _shape(decoded) == _shape(nested)  # types too: a tuple stays a tuple, 1.0 stays a float


def _depth(value: Any) -> int:
    """Return how many containers deep ``value`` goes (a scalar: 0)."""
    if isinstance(value, list | tuple):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _shape(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return (type(value), [_shape(v) for v in value])
    if isinstance(value, dict):
        return (dict, {k: _shape(v) for k, v in value.items()})
    return type(value)


# JSON text the standard library reads: numbers of any length, NaN and Infinity, escapes of lone surrogates.
json_number_text = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
json_string_text = st.builds(
    json.dumps, st.text(st.characters(exclude_categories=()), max_size=8), ensure_ascii=st.booleans()
)
json_text = st.recursive(
    json_number_text
    | st.integers().map(str)
    | json_string_text
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "true", "false", "null"]),
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(json_string_text, children), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"
        )
    ),
    max_leaves=12,
)


@st.composite
def stdlib_messages(draw: st.DrawFn) -> bytes:
    """An envelope whose args are JSON text as json.loads reads it, sometimes damaged or re-encoded."""
    args = ",".join(draw(st.lists(json_text, max_size=4))).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 3)) == 0:  # one byte of the args replaced, removed or inserted
        at = draw(st.integers(0, len(args)))
        args = args[:at] + draw(st.binary(max_size=1)) + args[at + draw(st.integers(0, 1)) :]
    head = f'{{"v":1,"job":"{FuzzJob.job_name}","id":"i","queue":"single","args":['.encode()
    raw = head + args + b'],"kwargs":{}}'
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "bom", "utf-16", "utf-32-le"]))
    if encoding == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif encoding != "utf-8":
        with contextlib.suppress(UnicodeDecodeError):  # a damaged byte: left as UTF-8
            raw = raw.decode("utf-8", "surrogatepass").encode(encoding, "surrogatepass")
    return raw


@FUZZ
@given(stdlib_messages())
def test_the_envelope_means_what_json_loads_made_of_it(raw: bytes) -> None:
    try:
        expected = json.loads(raw)
    except (ValueError, RecursionError):
        with pytest.raises(DecodeError):
            JsonSerializer().loads(raw)
        return

    args = JsonSerializer().loads(raw).args

    assert repr(args) == repr(expected["args"])  # repr: NaN equals NaN; 1 and 1.0, 0.0 and -0.0 differ
