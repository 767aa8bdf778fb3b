"""Dead letter messages without a broker: the DLQ copy, reading it back best-effort, the replay copy, and
the replay selection rules of ``kafkadlq``."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from kafka_jobs.deadletter import (
    MAX_TRACEBACK,
    REPLAYED_FROM,
    DeadLetter,
    dead_letter_message,
    dlq_headers,
    parse_offset,
    replay_message,
    trimmed_traceback,
)
from kafka_jobs.deadletter.replay import _selection
from kafka_jobs.exceptions import ReplayRefused


class FakeMessage:
    """The parts of confluent_kafka.Message the dead letter code uses."""

    def __init__(
        self,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        key: bytes | None = b"k",
        where: tuple[str, int, int] = ("src", 3, 17),
    ) -> None:
        self._value, self._headers, self._key, self._where = value, headers, key, where

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


def failure() -> ValueError:
    try:
        raise ValueError("bad input " + "x" * 3000)
    except ValueError as exc:
        return exc


def dead_copy(value: bytes | None, headers: list[tuple[str, bytes]] | None = None, **where: int) -> FakeMessage:
    """Return the DLQ copy of a message as the DLQ consumer would see it (at dlq/0@5)."""
    out = dead_letter_message(FakeMessage(value, headers), "dlq", group_id="workers", attempts=4, exc=failure())
    return FakeMessage(out.value, out.headers, out.key, ("dlq", where.get("partition", 0), where.get("offset", 5)))


def test_the_dlq_copy_keeps_key_value_and_headers_and_says_where_and_why() -> None:
    source = FakeMessage(b"payload", [("kj-job", b"app.Job"), ("kj-dlq-attempts", b"old"), ("custom", b"1")])

    out = dead_letter_message(source, "dlq", group_id="workers", attempts=4, exc=failure())

    assert (out.topic, out.key, out.value) == ("dlq", b"k", b"payload")
    meta = dlq_headers(out.headers)
    assert meta["source-topic"] == "src" and meta["source-partition"] == "3" and meta["source-offset"] == "17"
    assert meta["consumer-group"] == "workers" and meta["attempts"] == "4"  # the stale kj-dlq header is replaced
    assert meta["exception-class"] == "builtins.ValueError"
    assert meta["exception-message"].startswith("bad input") and len(meta["exception-message"]) == 2000
    trace = meta["traceback"]
    assert trace.startswith("Traceback (most recent call last):\n") and ", in failure\n" in trace  # frames kept
    assert trace.endswith("xxx...\n") and len(trace) < 1000  # the long message was cut
    assert [k for k, _ in out.headers if not k.startswith("kj-dlq-")] == ["kj-job", "custom"]


def test_a_long_traceback_keeps_its_innermost_end() -> None:
    def ping(depth: int) -> None:  # two functions, so Python does not fold the repeated frames
        if depth == 0:
            raise RuntimeError("deep")
        pong(depth - 1)

    def pong(depth: int) -> None:
        ping(depth)

    try:
        ping(80)
    except RuntimeError as exc:
        trace = trimmed_traceback(exc)

    assert trace.startswith("...\n") and len(trace) <= MAX_TRACEBACK + 4
    assert trace.endswith("RuntimeError: deep\n")


def test_a_dead_letter_reads_back_with_its_job_error_and_source() -> None:
    envelope = json.dumps({"v": 1, "job": "app.Job", "id": "id-9", "queue": "q", "args": [], "kwargs": {}})

    letter = DeadLetter.from_message(dead_copy(envelope.encode()), cursor=6)

    assert (letter.job_name, letter.job_id) == ("app.Job", "id-9")
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("src", 3, 17)
    assert letter.source == "src/3@17" and letter.where == "dlq/0@5"
    assert letter.attempts == 4 and letter.consumer_group == "workers" and letter.failed_at
    assert letter.error.startswith("builtins.ValueError: bad input")
    assert letter.replayed  # offset 5 is below the cursor 6


def test_garbage_and_foreign_messages_are_still_listed() -> None:
    garbage = DeadLetter.from_message(dead_copy(b"\x00\xff", [("kj-job", b"app.Old"), ("kj-id", b"i-1")]), cursor=0)
    foreign = DeadLetter.from_message(FakeMessage(None, None, None, ("dlq", 0, 8)), cursor=0)

    assert (garbage.job_name, garbage.job_id, garbage.value) == ("app.Old", "i-1", b"\x00\xff")  # from the headers
    assert not garbage.replayed
    assert (foreign.job_name, foreign.source, foreign.error, foreign.attempts) == (None, None, "?", None)


def test_the_replay_copy_drops_the_dlq_headers_and_says_where_it_came_from() -> None:
    letter = DeadLetter.from_message(dead_copy(b"v", [("kj-id", b"i-1"), (REPLAYED_FROM, b"older/0/1")]))

    out = replay_message(letter, source_partitions=4)

    assert (out.topic, out.key, out.value, out.partition) == ("src", b"k", b"v", None)  # keyed: the partitioner
    assert out.headers == [("kj-id", b"i-1"), (REPLAYED_FROM, b"dlq/0/5")]


def test_a_keyless_replay_goes_back_to_its_source_partition_if_it_still_exists() -> None:
    out = dead_letter_message(FakeMessage(b"v", key=None), "dlq", group_id="g", attempts=1, exc=failure())
    letter = DeadLetter.from_message(FakeMessage(out.value, out.headers, None, ("dlq", 0, 0)))

    assert replay_message(letter, source_partitions=4).partition == 3
    assert replay_message(letter, source_partitions=2).partition is None


@pytest.mark.parametrize(("text", "parsed"), [("3", (None, 3)), ("1:4", (1, 4)), ("0:0", (0, 0))])
def test_offsets_are_offset_or_partition_colon_offset(text: str, parsed: tuple[int | None, int]) -> None:
    assert parse_offset(text) == parsed


@pytest.mark.parametrize("text", ["", "a", "-1", "1:-2", "-1:2", "1:2:3"])
def test_malformed_offsets_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_offset(text)


def test_an_offset_below_the_replay_cursor_is_refused_unless_forced() -> None:
    with pytest.raises(ReplayRefused, match=r"0:2 of 'dlq' are below the replay cursor \(0:5\).*--force"):
        _selection("dlq", [0], [(None, 2), (None, 7)], {0: 5}, force=False)

    assert _selection("dlq", [0], [(None, 2), (None, 7)], {0: 5}, force=True) == {0: {2, 7}}


def test_a_multi_partition_dlq_needs_partition_colon_offset() -> None:
    with pytest.raises(ReplayRefused, match="name messages as PARTITION:OFFSET"):
        _selection("dlq", [0, 1], [(None, 2)], {0: 0, 1: 0}, force=False)
    with pytest.raises(ReplayRefused, match="has no partition 4"):
        _selection("dlq", [0, 1], [(4, 2)], {0: 0, 1: 0}, force=False)

    assert _selection("dlq", [0, 1], [(1, 2), (0, 0)], {0: 0, 1: 0}, force=False) == {0: {0}, 1: {2}}


def test_kafkadlq_validates_its_arguments_before_touching_kafka() -> None:
    with pytest.raises(CommandError, match="not OFFSET or PARTITION:OFFSET"):
        call_command("kafkadlq", "replay", "--queue", "dlq", "--offsets", "x")
    with pytest.raises(CommandError, match="not allowed with argument"):
        call_command("kafkadlq", "replay", "--queue", "dlq", "--offsets", "1", "--all")
    with override_settings(JOB_BACKEND="kafka"):
        with pytest.raises(CommandError, match=r"Several queues have a dead letter queue \(dlq, dlq0"):
            call_command("kafkadlq", "replay", "--all")
        with pytest.raises(CommandError, match="Queue 'single' has no dead_letter_queue"):
            call_command("kafkadlq", "list", "--queue", "single")
        with pytest.raises(CommandError, match="not routed"):
            call_command("kafkadlq", "list", "--queue", "nope")
