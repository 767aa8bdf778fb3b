"""Dead letter messages without a broker: the DLQ copy (whatever the failure does when formatted), its stub,
reading it back best-effort, the replay copy, the replay ledger and the selection rules of ``kafkadlq``."""

from __future__ import annotations

import json
import traceback

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from kafka_jobs.deadletter import (
    MAX_EXCEPTION_MESSAGE,
    MAX_TRACEBACK,
    REPLAYED_FROM,
    DeadLetter,
    Ledger,
    ReplayState,
    dead_letter_message,
    dlq_headers,
    parse_offset,
    replay_message,
    stub_of,
    trimmed_traceback,
)
from kafka_jobs.deadletter.ledger import ledger_record
from kafka_jobs.deadletter.replay import _selection
from kafka_jobs.exceptions import ReplayRefused
from kafka_jobs.topics import DLQ_HEADROOM


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

    letter = DeadLetter.from_message(dead_copy(envelope.encode()), ReplayState.REPLAYED)

    assert (letter.job_name, letter.job_id) == ("app.Job", "id-9")
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("src", 3, 17)
    assert letter.source == "src/3@17" and letter.where == "dlq/0@5"
    assert letter.attempts == 4 and letter.consumer_group == "workers" and letter.failed_at
    assert letter.error.startswith("builtins.ValueError: bad input")
    assert letter.replayed and letter.stub is None


def test_garbage_and_foreign_messages_are_still_listed() -> None:
    garbage = DeadLetter.from_message(dead_copy(b"\x00\xff", [("kj-job", b"app.Old"), ("kj-id", b"i-1")]))
    foreign = DeadLetter.from_message(FakeMessage(None, None, None, ("dlq", 0, 8)), ReplayState.PASSED_OVER)
    deep = DeadLetter.from_message(dead_copy(b"[" * 100_000 + b"]" * 100_000, [("kj-id", b"i-2")]))

    assert (garbage.job_name, garbage.job_id, garbage.value) == ("app.Old", "i-1", b"\x00\xff")  # from the headers
    assert not garbage.replayed and garbage.state is ReplayState.PENDING
    assert not foreign.replayed  # passed over is not replayed
    assert deep.job_id == "i-2"  # JSON too deep to parse is garbage like any other
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


def ledger(*records: bytes) -> Ledger:
    return Ledger.fold(records)


def test_a_message_replayed_already_is_refused_unless_forced() -> None:
    book = ledger(ledger_record({0: [3]}, {0: [4]}, forced=False))

    with pytest.raises(ReplayRefused, match=r"0:3 of 'dlq' were replayed already .*--force"):
        _selection("dlq", [0], [(None, 2), (None, 3), (None, 7)], book, force=False)

    assert _selection("dlq", [0], [(None, 2), (None, 4), (None, 7)], book, force=False) == {0: {2, 4, 7}}
    assert _selection("dlq", [0], [(None, 3)], book, force=True) == {0: {3}}


def test_a_multi_partition_dlq_needs_partition_colon_offset() -> None:
    with pytest.raises(ReplayRefused, match="name messages as PARTITION:OFFSET"):
        _selection("dlq", [0, 1], [(None, 2)], Ledger(), force=False)
    with pytest.raises(ReplayRefused, match="has no partition 4"):
        _selection("dlq", [0, 1], [(4, 2)], Ledger(), force=False)

    assert _selection("dlq", [0, 1], [(1, 2), (0, 0)], Ledger(), force=False) == {0: {0}, 1: {2}}


def test_the_ledger_tells_replayed_passed_over_and_pending_apart() -> None:
    book = ledger(
        ledger_record({0: [3]}, {}, forced=False),  # --offsets 3
        ledger_record({0: [0, 1, 4, 5, 6], 1: [0, 1]}, {0: [2]}, forced=False),  # --all (0:2 is a stub)
        ledger_record({0: [3]}, {}, forced=True),  # --offsets 3 --force: no change of state
        b"not json",  # damaged or foreign records are skipped
        json.dumps({"v": 99, "partitions": {"0": {"replayed": [[0, 100]]}}}).encode(),  # a later release's
        ledger_record({0: [9]}, {}, forced=False),  # --offsets 9: 7 and 8 stay pending
    )

    states = {o: book.state(0, o).value for o in range(11)}

    assert states == {
        **{o: "replayed" for o in (0, 1, 3, 4, 5, 6, 9)},
        2: "passed over",
        7: "pending",
        8: "pending",
        10: "pending",
    }
    assert book.partition(0).replayed == [(0, 2), (3, 7), (9, 10)]  # merged ranges: the ledger stays small
    assert book.cursors([0, 1, 2]) == {0: 7, 1: 2, 2: 0}  # where --all starts reading
    assert book.state(1, 1) is ReplayState.REPLAYED and book.state(2, 0) is ReplayState.PENDING
    assert book.entries == 4


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


# --- Building the copy whatever the failure does; bounded, valid UTF-8 headers; the stub --------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class StrOnlyBroken(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def copy_headers(exc: BaseException, group_id: str = "workers", **message: object) -> dict[str, bytes]:
    out = dead_letter_message(FakeMessage(b"v", **message), "dlq", group_id=group_id, attempts=1, exc=exc)  # type: ignore[arg-type]
    return dict(out.headers or [])


def test_an_exception_whose_str_raises_falls_back_to_its_repr_then_its_class() -> None:
    str_broken = copy_headers(raised(StrOnlyBroken("detail")))
    both_broken = copy_headers(raised(Unprintable()))

    assert str_broken["kj-dlq-exception-message"] == b"<str() failed> StrOnlyBroken('detail')"
    name = "tests.unit.test_deadletter_messages.Unprintable"
    assert both_broken["kj-dlq-exception-class"] == name.encode()
    assert both_broken["kj-dlq-exception-message"] == f"<{name}: str() and repr() failed>".encode()
    assert b"in raised" in both_broken["kj-dlq-traceback"]


def test_a_traceback_that_cannot_be_formatted_falls_back_to_its_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("formatting bug")

    monkeypatch.setattr(traceback.TracebackException, "from_exception", broken)

    headers = copy_headers(raised(ValueError("v")))

    assert b"in raised" in headers["kj-dlq-traceback"] and headers["kj-dlq-traceback"].endswith(b"v\n")


def test_the_exception_message_is_cut_by_characters_and_every_header_is_valid_utf8() -> None:
    message = "a" + "é" * 2500 + "\ud800"  # multi-byte characters and a lone surrogate

    headers = copy_headers(raised(ValueError(message)), group_id="g\udcff")

    assert headers["kj-dlq-exception-message"].decode() == message[:MAX_EXCEPTION_MESSAGE]
    assert all(value.decode("utf-8") for key, value in headers.items() if key.startswith("kj-dlq-"))


def test_the_dlq_headers_stay_well_inside_the_headroom_whatever_the_failure() -> None:
    wide = "\U0001f4a5"  # four bytes in UTF-8
    kind = type("E" * 5000, (Exception,), {"__module__": wide * 5000})
    exc = raised(kind(wide * 50_000))

    headers = copy_headers(exc, group_id=wide * 5000)

    total = sum(len(k) + len(v) for k, v in headers.items() if k.startswith("kj-dlq-"))
    assert total < DLQ_HEADROOM / 2, total


def test_a_stub_keeps_the_dlq_headers_and_the_job_identity_and_leaves_the_rest_out() -> None:
    source = FakeMessage(b"x" * 5000, [("kj-job", b"app.Job"), ("kj-id", b"id-1"), ("big", b"y" * 3000)])
    copy = dead_letter_message(source, "dlq", group_id="workers", attempts=3, exc=failure())

    stub = stub_of(copy, "dead letter of src/3@17: MSG_SIZE_TOO_LARGE: Broker: Message size too large")

    assert (stub.topic, stub.key, stub.value) == ("dlq", None, b"")
    names = [k for k, _ in stub.headers or []]
    assert names[:2] == ["kj-job", "kj-id"] and "big" not in names
    meta = dlq_headers(stub.headers)
    assert (
        meta["source-offset"] == "17" and meta["attempts"] == "3" and meta["exception-class"] == "builtins.ValueError"
    )
    assert "MSG_SIZE_TOO_LARGE" in meta["stub"]
    assert int(meta["original-bytes"]) == 5000 + 1 + sum(len(k) + len(v or b"") for k, v in copy.headers or [])
    letter = DeadLetter.from_message(FakeMessage(stub.value, stub.headers, stub.key, ("dlq", 0, 9)))
    assert letter.stub is not None and letter.original_bytes == int(meta["original-bytes"])
    assert (letter.job_name, letter.job_id) == ("app.Job", "id-1")
