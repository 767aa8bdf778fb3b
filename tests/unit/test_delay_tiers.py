"""The delay ladder, the kj-delay-* headers and where a delayed message goes next (pure logic)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from django.test import override_settings

from kafka_jobs.backends import kafka as kafka_backend
from kafka_jobs.conf import build_settings
from kafka_jobs.delays.headers import Delay, MalformedDelay, read_delay, without_delay
from kafka_jobs.delays.messages import Waiting, epoch_ms, into_tier, next_hop, release_ms
from kafka_jobs.delays.tiers import DEFAULT_DELAY_TIERS, DelayLadder, delay_of_label, label, parse_tiers
from kafka_jobs.exceptions import ConfigurationError
from kafka_jobs.producer import OutgoingMessage

LADDER = DelayLadder(DEFAULT_DELAY_TIERS, "staging.")
S = 1000


# The ladder ------------------------------------------------------------------------------------------------


def test_default_ladder_topics_carry_the_queue_prefix_and_a_readable_delay() -> None:
    assert LADDER.topics() == [
        f"staging.kafka_jobs.delay.{name}" for name in ("1s", "5s", "30s", "5m", "30m", "4h", "1d")
    ]


@pytest.mark.parametrize(
    ("remaining", "tier"),
    [
        (1, 1),
        (999, 1),
        (1000, 1),
        (4999, 1),
        (5000, 5),
        (29_999, 5),
        (60_000, 30),
        (86_400_000, 86_400),
        (10**10, 86_400),
    ],
)
def test_a_job_waits_in_the_largest_tier_not_longer_than_its_remaining_delay(remaining: int, tier: int) -> None:
    assert LADDER.tier_for(remaining).delay_ms == tier * S


@pytest.mark.parametrize("ms", [1, 500, 1000, 1500, 60_000, 90_000, 3_600_000, 86_400_000, 172_800_000])
def test_labels_name_the_delay_and_read_back(ms: int) -> None:
    assert delay_of_label(label(ms)) == ms
    assert re.fullmatch(r"[1-9][0-9]*(ms|s|m|h|d)", label(ms))


def test_delay_of_topic_reads_tiers_of_this_prefix_even_if_no_longer_configured() -> None:
    assert LADDER.delay_of_topic("staging.kafka_jobs.delay.5m") == 300_000
    assert LADDER.delay_of_topic("staging.kafka_jobs.delay.2h") == 7_200_000  # not in the ladder: still drained
    assert LADDER.delay_of_topic("other.kafka_jobs.delay.5m") is None
    assert LADDER.delay_of_topic("staging.kafka_jobs.delay.soon") is None


def test_subscription_matches_tier_topics_of_this_prefix_only() -> None:
    pattern = re.compile(LADDER.subscription())
    assert pattern.match("staging.kafka_jobs.delay.5m")
    assert not pattern.match("stagingXkafka_jobs.delay.5m")  # the dot is literal
    assert not pattern.match("prod.staging.kafka_jobs.delay.5m")
    assert not pattern.match("staging.default")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "non-empty list"),
        ("1,5", "must be a list of delays in seconds"),
        ([5, 1], "strictly increasing"),
        ([1, 1], "strictly increasing"),
        ([0, 1], "number of seconds > 0"),
        ([-1], "number of seconds > 0"),
        ([True], "number of seconds > 0"),
        ([float("inf")], "number of seconds > 0"),
        ([0.0005], "whole number of milliseconds"),
        (list(range(1, 40)), "at most 32"),
    ],
)
def test_a_bad_ladder_is_a_configuration_error_naming_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as error:
        build_settings("kafka", {"DELAY_TIERS": value})
    assert "KAFKA_JOBS['DELAY_TIERS']" in str(error.value)


def test_a_good_ladder_is_kept_in_seconds() -> None:
    assert parse_tiers([0.5, 2, 60]) == (0.5, 2.0, 60.0)
    assert build_settings("kafka", {}).delay_tiers == DEFAULT_DELAY_TIERS


@pytest.mark.parametrize("value", [0, -2, 2.0])
def test_internal_replication_factor_is_positive_or_the_broker_default(value: object) -> None:
    with pytest.raises(ConfigurationError, match="INTERNAL_REPLICATION_FACTOR"):
        build_settings("kafka", {"INTERNAL_REPLICATION_FACTOR": value})
    assert build_settings("kafka", {"INTERNAL_REPLICATION_FACTOR": 3}).internal_replication_factor == 3


# Headers ---------------------------------------------------------------------------------------------------


def test_delay_headers_read_back() -> None:
    delay = Delay(due_ms=5000, entered_ms=1000, topic="staging.default", partition=2)
    assert read_delay(delay.headers()) == delay
    assert read_delay(Delay(5, 1, "q").headers()).partition is None


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([], "kj-delay-topic header is missing"),
        ([("kj-delay-topic", b"q"), ("kj-delay-entered", b"1")], "kj-delay-due header is missing"),
        ([("kj-delay-topic", b"q"), ("kj-delay-due", b"soon"), ("kj-delay-entered", b"1")], "not a whole number"),
        ([("kj-delay-topic", b"\xff"), ("kj-delay-due", b"1"), ("kj-delay-entered", b"1")], "not UTF-8"),
        (
            [
                ("kj-delay-topic", b"q"),
                ("kj-delay-due", b"1"),
                ("kj-delay-entered", b"1"),
                ("kj-delay-partition", b"-1"),
            ],
            "negative",
        ),
    ],
)
def test_unreadable_delay_headers_are_malformed(headers: list[tuple[str, bytes]], message: str) -> None:
    with pytest.raises(MalformedDelay, match=message):
        read_delay(headers)


def test_without_delay_keeps_other_headers_in_order() -> None:
    headers = [("kj-job", b"a.B"), ("kj-delay-due", b"1"), ("traceparent", b"00-x"), ("kj-delay-topic", b"q")]
    assert without_delay(headers) == [("kj-job", b"a.B"), ("traceparent", b"00-x")]


# Where a message goes --------------------------------------------------------------------------------------


def _job_message(partition: int | None = None) -> OutgoingMessage:
    headers = [("kj-job", b"app.Job"), ("kj-id", b"42")]
    return OutgoingMessage("staging.default", b'{"v":1}', key=b"k", partition=partition, headers=headers)


def test_a_due_job_goes_to_its_queue_unchanged() -> None:
    message = _job_message()
    assert into_tier(message, due_ms=1000, now_ms=1000, ladder=LADDER) is message
    assert into_tier(message, due_ms=999, now_ms=1000, ladder=LADDER) is message


def test_a_later_job_goes_to_its_tier_with_key_and_envelope_and_its_partition_in_a_header() -> None:
    out = into_tier(_job_message(partition=3), due_ms=1000 + 7 * S, now_ms=1000, ladder=LADDER)

    assert out.topic == "staging.kafka_jobs.delay.5s"
    assert out.value == b'{"v":1}'
    assert out.key == b"k"
    assert out.partition is None  # the tier's partition comes from the key, not from the queue's numbering
    assert out.headers[:2] == [("kj-job", b"app.Job"), ("kj-id", b"42")]
    assert read_delay(out.headers) == Delay(due_ms=8000, entered_ms=1000, topic="staging.default", partition=3)


def _waiting(message: OutgoingMessage, now_ms: int) -> Waiting:
    delay = read_delay(message.headers)
    tier = LADDER.delay_of_topic(message.topic)
    return Waiting(0, message.key, message.value, list(message.headers or []), delay, release_ms(delay, tier))


def test_a_job_hops_down_the_ladder_then_reaches_its_queue_exactly_as_enqueued() -> None:
    original = _job_message(partition=3)
    now = 0
    message = into_tier(original, due_ms=400 * S, now_ms=now, ladder=LADDER)
    hops = []
    while message.topic != original.topic:
        waiting = _waiting(message, now)
        now = waiting.release_ms
        hops.append((message.topic.rsplit(".", 1)[-1], now // S))
        message = next_hop(waiting, now, LADDER)

    assert hops == [("5m", 300), ("30s", 330), ("30s", 360), ("30s", 390), ("5s", 395), ("5s", 400)]
    assert now == 400 * S  # released exactly when due, never before
    assert (message.value, message.key, message.partition, message.headers) == (
        original.value,
        original.key,
        original.partition,
        original.headers,
    )


def test_a_job_due_before_its_tier_delay_is_released_when_due() -> None:
    message = into_tier(_job_message(), due_ms=1300, now_ms=1000, ladder=LADDER)  # 0.3 s: the 1 s tier
    assert _waiting(message, 1000).release_ms == 1300


def test_a_topic_of_unknown_delay_releases_at_the_due_time() -> None:
    assert release_ms(Delay(due_ms=9000, entered_ms=0, topic="q"), None) == 9000


def test_epoch_ms_rounds_up_so_a_job_is_never_released_early() -> None:
    moment = dt.datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)  # one microsecond past a millisecond
    assert epoch_ms(moment) == round(dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp() * 1000) + 1


class _Producer:
    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def produce(self, messages: list[OutgoingMessage], *, sync: bool) -> None:
        self.sent.extend(messages)


@pytest.fixture
def fake_producer_for_delays(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[OutgoingMessage]]:
    producer = _Producer()
    monkeypatch.setattr(kafka_backend, "get_producer", lambda: producer)
    monkeypatch.setattr(kafka_backend, "close_producer", lambda: None)
    settings = {"ROUTES": "tests.kafka_routes", "QUEUE_PREFIX": "p.", "DELAY_TIERS": [2]}
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS=settings):
        yield producer.sent


def test_the_kafka_backend_sends_a_job_scheduled_for_later_to_a_tier(
    fake_producer_for_delays: list[OutgoingMessage],
) -> None:
    from tests.jobs import DelayedJob

    later = DelayedJob.set(wait=60, partition=1).perform_later("log", "later")
    past = DelayedJob.set(wait_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).perform_later("log", "past")
    now = DelayedJob.perform_later("log", "now")

    sent = {message.headers[1][1].decode(): message for message in fake_producer_for_delays}
    assert sent[later.job_id].topic == "p.kafka_jobs.delay.2s"
    assert sent[later.job_id].partition is None
    assert read_delay(sent[later.job_id].headers).topic == "p.delayed"
    assert read_delay(sent[later.job_id].headers).partition == 1
    assert later.scheduled_at is not None
    assert read_delay(sent[later.job_id].headers).due_ms == epoch_ms(later.scheduled_at)
    assert sent[past.job_id].topic == "p.delayed"  # due already: straight to the queue
    assert sent[now.job_id].topic == "p.delayed"
    assert without_delay(sent[now.job_id].headers) == sent[now.job_id].headers


# Non-blocking retries: the route option and the retry message -------------------------------------------------


def test_the_retry_mode_of_a_route_is_pause_by_default_or_delay() -> None:
    from kafka_jobs.routing import active_job_topic

    assert active_job_topic("a").retry == "pause"
    assert active_job_topic("a", retry="delay").retry == "delay"
    with pytest.raises(ConfigurationError, match=r"retry must be one of \('pause', 'delay'\), got 'later'"):
        active_job_topic("a", retry="later")


class _Consumed:
    """A consumed job message (what the executor holds when a job fails)."""

    def __init__(self, value: bytes) -> None:
        self._value = value

    def topic(self) -> str:
        return "p.delayed"

    def partition(self) -> int:
        return 1

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return [("kj-job", b"tests.jobs.DelayedJob"), ("kj-id", b"x"), ("traceparent", b"00-1")]


def test_a_retry_goes_through_the_tiers_to_the_same_partition_with_its_executions() -> None:
    from kafka_jobs.delays.retry import retry_message
    from kafka_jobs.serializer import get_serializer
    from tests.jobs import DelayedJob

    job = DelayedJob("log", "tag")
    job.executions = 2  # it ran twice
    settings = build_settings("kafka", {"QUEUE_PREFIX": "p.", "DELAY_TIERS": [1, 5]})
    with override_settings(KAFKA_JOBS={"ROUTES": "tests.kafka_routes", "QUEUE_PREFIX": "p."}):
        out = retry_message(_Consumed(b"{}"), job, 7.0, settings)
        envelope = get_serializer().loads(out.value)

    assert out.topic == "p.kafka_jobs.delay.5s"
    assert out.key == b"k"
    delay = read_delay(out.headers)
    assert (delay.topic, delay.partition) == ("p.delayed", 1)
    assert without_delay(out.headers) == _Consumed(b"").headers()
    assert (envelope.job_id, envelope.executions) == (job.job_id, 2)
    assert envelope.scheduled_at is not None
    assert delay.due_ms == epoch_ms(envelope.scheduled_at)
