"""The forwarder's bookkeeping and loop, with a fake consumer, producer and clock (no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from kafka_jobs import offsetgap
from kafka_jobs.conf import build_settings
from kafka_jobs.delays.forwarder import DelayForwarder
from kafka_jobs.delays.headers import Delay, read_delay
from kafka_jobs.delays.messages import Waiting
from kafka_jobs.delays.window import TierWindow

TIER = "kafka_jobs.delay.1s"  # no queue prefix
LIMIT = 100
S = 1000


def waiting(offset: int, release: int) -> Waiting:
    return Waiting(offset, None, b"v", [], Delay(release, 0, "q"), release)


# TierWindow ------------------------------------------------------------------------------------------------


def test_window_releases_by_time_whatever_the_offset_order() -> None:
    window = TierWindow(TIER, 0)
    for offset, release in [(10, 500), (11, 200), (12, 900)]:
        assert window.accept(offset, waiting(offset, release), LIMIT)

    assert window.wake_ms() == 200
    assert window.release(199) == []
    assert [w.offset for w in window.release(500)] == [11, 10]
    assert window.wake_ms() == 900


def test_window_commits_only_past_a_contiguous_run_of_forwarded_messages() -> None:
    window = TierWindow(TIER, 0)
    for offset in (10, 11, 12):
        window.accept(offset, waiting(offset, offset), LIMIT)
    window.release(100)

    window.forwarded(11)
    window.forwarded(12)
    assert window.commit_point() is None  # 10 is not forwarded yet: a crash now forwards 11 and 12 again
    window.forwarded(10)
    assert window.commit_point() == 13
    assert len(window) == 0
    assert window.idle()


def test_window_skipped_messages_are_committed_past() -> None:
    window = TierWindow(TIER, 0)
    window.accept(4, None, LIMIT)
    assert window.commit_point() == 5


def test_a_failed_forward_is_released_again_only_after_the_retry_time() -> None:
    window = TierWindow(TIER, 0)
    window.accept(0, waiting(0, 100), LIMIT)
    [first] = window.release(100)

    window.failed(first.offset, retry_at_ms=1100)
    assert window.release(1000) == []
    assert window.wake_ms() == 1100
    assert [w.offset for w in window.release(1100)] == [0]
    assert window.commit_point() is None


def test_a_full_window_pauses_and_refuses_messages_and_a_seen_offset_is_refused() -> None:
    window = TierWindow(TIER, 0)
    assert window.accept(5, waiting(5, 1), limit=2)
    assert not window.accept(5, waiting(5, 1), limit=2)  # delivered again after a seek
    assert window.accept(6, waiting(6, 1), limit=2)
    assert not window.accept(7, waiting(7, 1), limit=2)
    assert window.paused
    assert window.next_offset == 7  # where the resume seeks to


def test_a_message_after_a_gap_is_accepted_only_once_read_again_from_the_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    window = TierWindow(TIER, 0)
    window.accept(5, waiting(5, 1), LIMIT)
    assert not window.accept(9, waiting(9, 1), LIMIT)  # 6..8 missing: perhaps fetched before a pause
    assert window.seek_needed
    assert not window.accept(10, waiting(10, 1), LIMIT)  # nothing until the partition is read from 6 again
    window.seek_needed = False  # the forwarder seeked to next_offset (6)
    assert window.accept(6, waiting(6, 1), LIMIT)  # they were there after all
    window2 = TierWindow(TIER, 0)
    window2.accept(5, waiting(5, 1), LIMIT)
    assert not window2.accept(9, waiting(9, 1), LIMIT)
    window2.seek_needed = False
    assert not window2.accept(9, waiting(9, 1), LIMIT)  # read again too soon: 6..8 may not be readable yet
    assert window2.seek_needed
    window2.seek_needed = False
    monkeypatch.setattr(offsetgap, "GAP_CONFIRM", 0.0)  # as if GAP_CONFIRM had passed
    assert window2.accept(9, waiting(9, 1), LIMIT)  # a real gap: the same offset still came first


# The forwarder loop ----------------------------------------------------------------------------------------


class Message:
    """A consumed message, as confluent-kafka returns it."""

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        value: bytes | None = b"{}",
        headers: list[tuple[str, bytes]] | None = None,
        key: bytes | None = None,
        error: Any = None,
    ) -> None:
        self._where = (topic, partition, offset)
        self._value, self._headers, self._key, self._error = value, headers, key, error

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def error(self) -> Any:
        return self._error


class FakeConsumer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.queue: list[Message] = []
        self.paused: set[tuple[str, int]] = set()
        self.seeks: list[tuple[str, int, int]] = []
        self.commits: list[dict[tuple[str, int], int]] = []
        self.callbacks: dict[str, Any] = {}
        self.closed = False

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.topics = topics
        self.callbacks = callbacks

    def poll(self, timeout: float) -> Message | None:
        return self.queue.pop(0) if self.queue else None

    def consume(self, count: int, timeout: float) -> list[Message]:
        taken, self.queue = self.queue[:count], self.queue[count:]
        return taken

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.update((tp.topic, tp.partition) for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused.difference_update((tp.topic, tp.partition) for tp in partitions)

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        if asynchronous:
            self.config["on_commit"](None, offsets)

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.pending: list[tuple[dict[str, Any], Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.failing_topics: set[str] = set()

    def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        self.pending.append(({"topic": topic, "value": value, **kwargs}, kwargs.pop("on_delivery")))

    def flush(self, timeout: float) -> int:
        pending, self.pending = self.pending, []
        for message, callback in pending:
            if message["topic"] in self.failing_topics:
                callback(KafkaError(KafkaError._MSG_TIMED_OUT), None)
            else:
                self.delivered.append(message)
                callback(None, None)
        return 0

    def poll(self, timeout: float) -> int:
        return 0


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _forwarder(clock: Clock, **settings: Any) -> tuple[DelayForwarder, FakeConsumer, FakeProducer]:
    made: dict[str, Any] = {}

    def consumer(config: dict[str, Any]) -> FakeConsumer:
        made["consumer"] = FakeConsumer(config)
        return made["consumer"]

    def producer(config: dict[str, Any]) -> FakeProducer:
        made["producer"] = FakeProducer(config)
        return made["producer"]

    forwarder = DelayForwarder(
        build_settings("kafka", {"DELAY_TIERS": [1, 5], **settings}),
        consumer_factory=consumer,
        producer_factory=producer,
        clock=clock,
    )
    forwarder.open()
    forwarder._consumer.callbacks["on_assign"](forwarder._consumer, [TopicPartition(TIER, 0)])
    return forwarder, made["consumer"], made["producer"]


def tier_message(offset: int, due: int, entered: int, partition: int | None = None, key: bytes = b"k") -> Message:
    headers = [("kj-job", b"app.Job"), ("kj-id", str(offset).encode()), *Delay(due, entered, "q", partition).headers()]
    return Message(TIER, 0, offset, value=b"envelope-%d" % offset, headers=headers, key=key)


def test_a_job_is_forwarded_to_its_queue_when_due_never_before_then_committed_past() -> None:
    clock = Clock(10 * S)
    forwarder, consumer, producer = _forwarder(clock)
    consumer.queue = [tier_message(0, due=10 * S + 700, entered=10 * S, partition=2)]

    forwarder.step()
    assert producer.delivered == []
    clock.now = 10 * S + 600
    assert forwarder._poll_timeout() == pytest.approx(0.1)  # wakes up when it is due
    clock.now = 10 * S + 699
    forwarder.step()
    assert producer.delivered == []

    clock.now = 10 * S + 700
    forwarder.step()
    [sent] = producer.delivered
    assert (sent["topic"], sent["value"], sent["key"], sent["partition"]) == ("q", b"envelope-0", b"k", 2)
    assert sent["headers"] == [("kj-job", b"app.Job"), ("kj-id", b"0")]  # the delay headers are gone
    assert consumer.commits[-1] == {(TIER, 0): 1}


def test_a_job_with_more_to_wait_moves_to_the_next_tier_with_a_new_entry_time() -> None:
    clock = Clock(0)
    forwarder, consumer, producer = _forwarder(clock)
    consumer.queue = [tier_message(0, due=7 * S, entered=0)]  # in the 1 s tier by mistake of a clock: 6 s more

    clock.now = 1 * S
    forwarder.step()
    [sent] = producer.delivered
    assert sent["topic"] == "kafka_jobs.delay.5s"
    assert "partition" not in sent
    assert read_delay(sent["headers"]) == Delay(due_ms=7 * S, entered_ms=1 * S, topic="q")


def test_a_failed_forward_is_not_committed_and_is_retried_later() -> None:
    clock = Clock(5 * S)
    forwarder, consumer, producer = _forwarder(clock)
    producer.failing_topics.add("q")
    consumer.queue = [tier_message(0, due=5 * S, entered=4 * S)]

    forwarder.step()
    assert producer.delivered == []
    assert all(commit[(TIER, 0)] == 0 for commit in consumer.commits)  # not past it
    producer.failing_topics.clear()
    forwarder.step()
    assert producer.delivered == []  # waits for the retry delay
    clock.now += 1000
    forwarder.step()
    assert len(producer.delivered) == 1
    assert consumer.commits[-1] == {(TIER, 0): 1}


def test_a_message_that_is_not_a_delayed_job_is_skipped_loudly_and_committed_past(
    caplog: pytest.LogCaptureFixture,
) -> None:
    forwarder, consumer, producer = _forwarder(Clock(0))
    consumer.queue = [Message(TIER, 0, 0, headers=[("kj-job", b"x")]), Message(TIER, 0, 1, value=None)]

    forwarder.step()
    assert producer.delivered == []
    assert consumer.commits[-1] == {(TIER, 0): 2}
    assert caplog.text.count("cannot be forwarded and is SKIPPED") == 2


def test_a_full_window_pauses_its_partition_and_resumes_at_the_first_message_not_held() -> None:
    clock = Clock(0)
    forwarder, consumer, producer = _forwarder(clock, MAX_BUFFERED_MESSAGES=4)
    consumer.queue = [tier_message(n, due=(n + 1) * S, entered=n * S) for n in range(6)]

    forwarder.step()
    assert (TIER, 0) in consumer.paused
    assert len(forwarder.windows[(TIER, 0)]) == 4  # 4 and 5 were refused while paused

    clock.now = 2 * S  # 0 and 1 are due: the window drops to half, the partition resumes
    forwarder.step()
    assert (TIER, 0) not in consumer.paused
    assert consumer.seeks == [(TIER, 0, 4)]
    assert [m["value"] for m in producer.delivered] == [b"envelope-0", b"envelope-1"]


def test_revocation_commits_what_was_forwarded_and_forgets_the_partition() -> None:
    clock = Clock(S)
    forwarder, consumer, _producer = _forwarder(clock)
    consumer.queue = [tier_message(0, due=S, entered=0), tier_message(1, due=9 * S, entered=S)]
    forwarder.step()

    consumer.callbacks["on_revoke"](consumer, [TopicPartition(TIER, 0)])
    assert consumer.commits[-1] == {(TIER, 0): 1}
    assert forwarder.windows == {}


def test_a_lost_partition_is_forgotten_without_a_commit() -> None:
    forwarder, consumer, _producer = _forwarder(Clock(0))
    consumer.queue = [tier_message(0, due=9 * S, entered=0)]
    forwarder.step()
    commits = len(consumer.commits)

    consumer.callbacks["on_lost"](consumer, [TopicPartition(TIER, 0)])
    assert len(consumer.commits) == commits
    assert forwarder.windows == {}


def test_the_forwarder_subscribes_to_every_tier_topic_of_its_prefix_in_its_own_group() -> None:
    _, consumer, _producer = _forwarder(Clock(0), GROUP_ID="workers", QUEUE_PREFIX="p.")
    assert consumer.config["group.id"] == "workers.delays"
    assert consumer.topics == [r"^p\.kafka_jobs\.delay\..+$"]


def test_after_a_gap_the_forwarder_reads_the_partition_again_from_the_gap() -> None:
    forwarder, consumer, _producer = _forwarder(Clock(0))
    consumer.queue = [tier_message(0, due=9 * S, entered=0), tier_message(3, due=9 * S, entered=0)]
    forwarder.step()
    assert consumer.seeks == [(TIER, 0, 1)]

    consumer.queue = [tier_message(n, due=9 * S, entered=0) for n in (1, 2, 3)]
    forwarder.step()
    assert len(forwarder.windows[(TIER, 0)]) == 4
