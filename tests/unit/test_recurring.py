"""Recurring jobs: declaration and validation, ticks, the missed-tick policy, the scheduler's takeover and fires."""

from __future__ import annotations

import datetime as dt
import sys
import types
import uuid
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from kafka_jobs import Job
from kafka_jobs.conf import build_settings
from kafka_jobs.exceptions import ConfigurationError
from kafka_jobs.recurring import RecurringJob, recurring_job
from kafka_jobs.recurring.checks import check_recurring
from kafka_jobs.recurring.declaration import DEFAULT_GRACE as SKIP_GRACE
from kafka_jobs.recurring.fires import FireRecord, tick_to_fire
from kafka_jobs.recurring.loader import get_recurring, load_recurring
from kafka_jobs.recurring.scheduler import RecurringScheduler
from kafka_jobs.recurring.timing import CronSchedule, IntervalSchedule, time_zone
from tests.jobs import TickJob

UTC = dt.UTC
BERLIN = time_zone("Europe/Berlin", "test")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# Declaration -----------------------------------------------------------------------------------------------


def test_a_declaration_keeps_its_schedule_arguments_and_policy() -> None:
    item = recurring_job(
        "nightly", TickJob, cron="0 3 * * *", timezone="Europe/Berlin", args=["x"], kwargs={"a": 1}, missed="skip"
    )
    assert item.job_name == "tests.jobs.TickJob"
    assert item.schedule == CronSchedule("0 3 * * *", BERLIN)
    assert (item.args, item.kwargs, item.missed, item.queue) == (("x",), {"a": 1}, "skip", None)
    assert recurring_job("hourly", "tests.jobs.TickJob", every=3600).schedule == IntervalSchedule(dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression '61 \\* \\* \\* \\*' \\(Bad minute\\)"),
        ({"cron": "* * *"}, "invalid cron expression"),
        ({"cron": "0 0 31 2 *"}, "invalid cron expression|never matches"),
        ({"cron": 5}, "cron must be a string"),
        ({}, "exactly one of cron"),
        ({"cron": "* * * * *", "every": 5}, "exactly one of cron"),
        ({"every": 0.5}, "at least one second"),
        ({"every": "hourly"}, "must be a timedelta"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"every": 60, "timezone": "Europe/Berlin"}, "timezone applies to cron= only"),
        ({"every": 60, "missed": "all"}, "missed must be one of"),
        ({"every": 60, "args": "abc"}, "args must be a list"),
        ({"every": 60, "queue": 3}, "queue must be a queue name"),
    ],
)
def test_a_bad_declaration_is_a_configuration_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        recurring_job("report", TickJob, **kwargs)


@pytest.mark.parametrize("job", [None, 3, object, Job, ""])
def test_the_job_must_be_a_concrete_job_class_or_a_name(job: Any) -> None:
    with pytest.raises(ConfigurationError, match="job must be a Job subclass"):
        recurring_job("report", job, every=60)


@pytest.mark.parametrize("name", ["", "a b", "x" * 201, 5])
def test_the_name_must_be_usable_as_a_key(name: Any) -> None:
    with pytest.raises(ConfigurationError, match="the name must be"):
        recurring_job(name, TickJob, every=60)


def test_cron_without_cronsim_installed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cronsim", None)  # import cronsim now raises ImportError
    with pytest.raises(ConfigurationError, match=r"pip install 'kafka-jobs\[cron\]'"):
        recurring_job("report", TickJob, cron="0 3 * * *")
    recurring_job("report", TickJob, every=60)  # intervals need no library


def test_job_ids_are_deterministic_per_schedule_and_tick() -> None:
    a = recurring_job("a", TickJob, every=60)
    tick = at("2030-01-01T03:00:00+00:00")
    assert a.job_id(tick) == a.job_id(tick.astimezone(BERLIN))  # the same instant, whatever the zone
    assert uuid.UUID(a.job_id(tick)).version == 5
    assert a.job_id(tick) != a.job_id(tick + dt.timedelta(minutes=1))
    assert a.job_id(tick) != recurring_job("b", TickJob, every=60).job_id(tick)


# When schedules tick ---------------------------------------------------------------------------------------


def test_cron_ticks_in_its_time_zone() -> None:
    nightly = CronSchedule.parse("0 3 * * *", BERLIN, "test")
    assert nightly.next_after(at("2030-01-10T12:00:00+00:00")) == at("2030-01-11T02:00:00+00:00")  # CET
    assert nightly.next_after(at("2030-07-10T12:00:00+00:00")) == at("2030-07-11T01:00:00+00:00")  # CEST
    assert nightly.latest_at(at("2030-01-11T02:00:00+00:00")) == at("2030-01-11T02:00:00+00:00")  # at: included
    assert nightly.latest_at(at("2030-01-11T01:59:59.9+00:00")) == at("2030-01-10T02:00:00+00:00")
    assert nightly.next_after(at("2030-01-11T02:00:00+00:00")) == at("2030-01-12T02:00:00+00:00")  # strictly after


def test_cron_in_the_skipped_hour_of_a_dst_change_runs_once_right_after_it() -> None:
    at_2_30 = CronSchedule.parse("30 2 * * *", BERLIN, "test")  # 2030-03-31: 02:00 CET jumps to 03:00 CEST
    tick = at_2_30.next_after(at("2030-03-30T12:00:00+00:00"))
    assert tick == at("2030-03-31T01:00:00+00:00")  # 03:00 CEST, the first minute after the gap
    assert at_2_30.next_after(tick) == at("2030-04-01T00:30:00+00:00")


def test_cron_with_seconds_ticks_every_second_it_names() -> None:
    every_2s = CronSchedule.parse("*/2 * * * * *", time_zone("UTC", "test"), "test")
    assert every_2s.next_after(at("2030-01-01T00:00:00.5+00:00")) == at("2030-01-01T00:00:02+00:00")


def test_intervals_count_from_the_epoch_so_every_worker_agrees() -> None:
    hourly = IntervalSchedule.parse(dt.timedelta(hours=1), "test")
    assert hourly.next_after(at("2030-01-01T10:15:00+00:00")) == at("2030-01-01T11:00:00+00:00")
    assert hourly.latest_at(at("2030-01-01T10:15:00+00:00")) == at("2030-01-01T10:00:00+00:00")
    assert hourly.next_after(at("2030-01-01T11:00:00+00:00")) == at("2030-01-01T12:00:00+00:00")


# The missed-tick policy ------------------------------------------------------------------------------------

HOURLY = IntervalSchedule(dt.timedelta(hours=1))
SINCE = at("2030-01-01T00:30:00+00:00")


def test_a_due_tick_fires_once() -> None:
    record = FireRecord("h", SINCE, last_tick=at("2030-01-01T09:00:00+00:00"))
    now = at("2030-01-01T10:00:00.2+00:00")
    assert tick_to_fire(HOURLY, record, now, "latest", SKIP_GRACE) == at("2030-01-01T10:00:00+00:00")
    fired = FireRecord("h", SINCE, last_tick=at("2030-01-01T10:00:00+00:00"))
    assert tick_to_fire(HOURLY, fired, now, "latest", SKIP_GRACE) is None


def test_after_downtime_latest_fires_the_latest_missed_tick_once_and_skip_fires_none() -> None:
    record = FireRecord("h", SINCE, last_tick=at("2030-01-01T04:00:00+00:00"))
    now = at("2030-01-01T10:20:00+00:00")  # ticks 05:00 .. 10:00 were missed
    assert tick_to_fire(HOURLY, record, now, "latest", SKIP_GRACE) == at("2030-01-01T10:00:00+00:00")
    assert tick_to_fire(HOURLY, record, now, "skip", SKIP_GRACE) is None
    on_time = at("2030-01-01T10:00:30+00:00")  # a takeover after a short delay is not downtime
    assert tick_to_fire(HOURLY, record, on_time, "skip", SKIP_GRACE) == at("2030-01-01T10:00:00+00:00")


def test_ticks_at_most_grace_late_all_fire_in_order_later_ones_collapse() -> None:
    minutely = IntervalSchedule(dt.timedelta(minutes=1))
    record = FireRecord("m", SINCE, last_tick=at("2030-01-01T10:00:00+00:00"))
    now = at("2030-01-01T10:02:30+00:00")  # 10:01 and 10:02 are due; 10:01 is 90 s late
    patient = dt.timedelta(minutes=5)
    assert tick_to_fire(minutely, record, now, "latest", patient) == at("2030-01-01T10:01:00+00:00")
    record = FireRecord("m", SINCE, last_tick=at("2030-01-01T10:01:00+00:00"))
    assert tick_to_fire(minutely, record, now, "latest", patient) == at("2030-01-01T10:02:00+00:00")
    strict = dt.timedelta(seconds=60)  # 10:01 was missed: only the latest (10:02) fires
    record = FireRecord("m", SINCE, last_tick=at("2030-01-01T10:00:00+00:00"))
    assert tick_to_fire(minutely, record, now, "latest", strict) == at("2030-01-01T10:02:00+00:00")


def test_grace_is_a_non_negative_interval() -> None:
    assert recurring_job("a", TickJob, every=60, grace=5).grace == dt.timedelta(seconds=5)
    assert recurring_job("a", TickJob, every=60).grace == dt.timedelta(seconds=60)
    with pytest.raises(ConfigurationError, match="grace must be"):
        recurring_job("a", TickJob, every=60, grace=-1)


def test_a_new_schedule_never_fires_for_the_time_before_it_was_first_seen() -> None:
    record = FireRecord("h", since=at("2030-01-01T10:10:00+00:00"))
    assert tick_to_fire(HOURLY, record, at("2030-01-01T10:30:00+00:00"), "latest", SKIP_GRACE) is None
    assert tick_to_fire(HOURLY, record, at("2030-01-01T11:00:01+00:00"), "latest", SKIP_GRACE) == at(
        "2030-01-01T11:00:00+00:00"
    )


def test_fire_records_read_back_and_foreign_values_are_ignored() -> None:
    record = FireRecord("h", SINCE, at("2030-01-01T10:00:00+00:00"), "id-1", at("2030-01-01T10:00:01+00:00"), "x")
    assert FireRecord.decode(record.encode()) == record
    assert FireRecord.decode(FireRecord("h", SINCE).encode()) == FireRecord("h", SINCE)
    for foreign in (None, b"", b"[]", b'{"v": 2}', b'{"v": 1, "name": "h", "since": "yesterday"}'):
        assert FireRecord.decode(foreign) is None


# Loading the declarations ----------------------------------------------------------------------------------


@pytest.fixture
def routes_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A routes module (tests.kafka_routes' routes) whose recurring_jobs the test sets."""
    from tests.kafka_routes import routes

    module = types.ModuleType("tests._recurring_under_test")
    module.routes = routes  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with override_settings(KAFKA_JOBS={"ROUTES": module.__name__}):
        yield module


def test_declarations_load_and_are_cached_until_settings_change(routes_module: types.ModuleType) -> None:
    routes_module.recurring_jobs = [recurring_job("a", "tests.jobs.TickJob", every=60)]  # type: ignore[attr-defined]
    loaded = get_recurring()
    assert [item.name for item in loaded] == ["a"]
    assert get_recurring() is loaded


def test_no_declarations_means_no_schedules(routes_module: types.ModuleType) -> None:
    assert get_recurring() == ()


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        (
            [recurring_job("a", TickJob, every=60), recurring_job("a", TickJob, every=30)],
            "declares the schedule name 'a' twice",
        ),
        ([recurring_job("a", "tests.jobs.NoSuchJob", every=60)], "names the job 'tests.jobs.NoSuchJob'"),
        ([recurring_job("a", TickJob, every=60, queue="unrouted")], "queue 'unrouted', which is not routed"),
        ([recurring_job("a", TickJob, every=60, args=[object()])], "arguments cannot be encoded"),
        (["not a declaration"], "must contain recurring_job"),
        ({"a": 1}, "must be a list"),
    ],
)
def test_bad_declarations_are_configuration_errors_at_start_and_in_checks(
    routes_module: types.ModuleType, declared: Any, message: str
) -> None:
    routes_module.recurring_jobs = declared  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match=message):
        get_recurring()
    [error] = check_recurring()
    assert error.id == "kafka_jobs.E020"
    assert isinstance(error, checks.Error)


def test_manage_py_check_reports_a_bad_cron_expression_in_the_routes_module() -> None:
    with (
        override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={"ROUTES": "tests.recurring_routes_badcron"}),
        pytest.raises(SystemCheckError, match=r"kafka_jobs\.E002.*invalid cron expression 'every day at 3'"),
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_a_queue_named_like_an_internal_topic_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka_jobs.routing import active_job_topic

    module = types.ModuleType("tests._reserved_routes")
    module.routes = [active_job_topic("kafka_jobs.delay.5s"), active_job_topic("fine")]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with override_settings(KAFKA_JOBS={"ROUTES": module.__name__}):
        [error] = check_recurring()
    assert error.id == "kafka_jobs.E021"


def test_load_recurring_is_the_validating_reader_of_a_module(routes_module: types.ModuleType) -> None:
    routes_module.recurring_jobs = (recurring_job("a", TickJob, every=60),)  # type: ignore[attr-defined]
    assert [item.name for item in load_recurring(routes_module.__name__)] == ["a"]


# The scheduler, with a fake consumer and clock ------------------------------------------------------------


class Record:
    """A message of the schedule topic, or its end (EOF)."""

    def __init__(self, offset: int, value: bytes | None = None, eof: bool = False) -> None:
        self._offset, self._value = offset, value
        self._error = KafkaError(KafkaError._PARTITION_EOF) if eof else None

    def error(self) -> KafkaError | None:
        return self._error

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value


class ScheduleConsumer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.queue: list[Record] = []
        self.assigned: list[TopicPartition] = []
        self.commits: list[int] = []
        self.fenced = False

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.topics, self.callbacks = topics, callbacks

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    def poll(self, timeout: float) -> Record | None:
        return self.queue.pop(0) if self.queue else None

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        if self.fenced:
            raise KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION))
        self.commits.append(offsets[0].offset)

    def close(self) -> None:
        pass


class Scheduler:
    """A RecurringScheduler wired to fakes: its enqueues and fire records are kept in lists."""

    def __init__(self, recurring: tuple[RecurringJob, ...], now: str) -> None:
        self.now = at(now)
        self.enqueued: list[tuple[str, dt.datetime]] = []
        self.written: list[FireRecord] = []
        self.scheduler = RecurringScheduler(
            build_settings("kafka", {"GROUP_ID": "workers"}),
            recurring,
            consumer_factory=self._consumer,
            clock=lambda: self.now,
            enqueue=self._enqueue,
        )
        self.scheduler._write = self._write  # type: ignore[method-assign]
        self.scheduler.open()

    def _consumer(self, config: dict[str, Any]) -> ScheduleConsumer:
        self.consumer = ScheduleConsumer(config)
        return self.consumer

    def _enqueue(self, item: RecurringJob, tick: dt.datetime) -> Job:
        self.enqueued.append((item.name, tick))
        return TickJob.restore([item.name], {}, item.job_id(tick))

    def _write(self, record: FireRecord) -> None:
        self.written.append(record)
        self.scheduler.records[record.name] = record

    def take_over(self, *records: FireRecord) -> None:
        self.consumer.callbacks["on_assign"](self.consumer, [TopicPartition(self.consumer.topics[0], 0)])
        self.consumer.queue = [Record(n, r.encode()) for n, r in enumerate(records)]
        self.consumer.queue.append(Record(len(records), eof=True))
        for _ in range(len(records) + 1):
            self.scheduler.step()


EVERY_MINUTE = recurring_job("minutely", TickJob, every=60, args=["minutely"])


def test_the_owner_reads_the_last_fires_then_fires_the_latest_missed_tick_once() -> None:
    fake = Scheduler((EVERY_MINUTE,), now="2030-01-01T10:05:30+00:00")
    old = FireRecord("minutely", SINCE, at("2030-01-01T10:01:00+00:00"), "old-id")
    newer = FireRecord("minutely", SINCE, at("2030-01-01T10:02:00+00:00"), "newer-id")

    fake.take_over(old, newer)
    assert fake.consumer.assigned[0].offset == -2  # read from the beginning (OFFSET_BEGINNING)
    assert fake.enqueued == [("minutely", at("2030-01-01T10:05:00+00:00"))]
    assert fake.written[-1].last_tick == at("2030-01-01T10:05:00+00:00")
    assert fake.written[-1].job_id == EVERY_MINUTE.job_id(at("2030-01-01T10:05:00+00:00"))
    assert fake.consumer.commits == [2]  # fenced by committing its position before firing

    fake.scheduler.step()
    assert len(fake.enqueued) == 1  # not again for the same tick
    fake.now = at("2030-01-01T10:06:00.01+00:00")
    fake.scheduler.step()
    assert fake.enqueued[-1] == ("minutely", at("2030-01-01T10:06:00+00:00"))


def test_a_schedule_seen_for_the_first_time_is_registered_and_fires_from_its_next_tick() -> None:
    fake = Scheduler((EVERY_MINUTE,), now="2030-01-01T10:05:30+00:00")
    fake.take_over()
    assert fake.enqueued == []
    assert fake.written == [FireRecord("minutely", at("2030-01-01T10:05:30+00:00"), schedule="every 0:01:00")]
    fake.now = at("2030-01-01T10:06:00+00:00")
    fake.scheduler.step()
    assert fake.enqueued == [("minutely", at("2030-01-01T10:06:00+00:00"))]


def test_a_process_that_is_not_the_owner_never_fires() -> None:
    fake = Scheduler((EVERY_MINUTE,), now="2030-01-01T10:05:30+00:00")
    fake.take_over(FireRecord("minutely", SINCE, at("2030-01-01T10:04:00+00:00")))
    fake.consumer.callbacks["on_revoke"](fake.consumer, [])
    fake.now = at("2030-01-01T10:07:00+00:00")
    fake.scheduler.step()
    assert [tick for _, tick in fake.enqueued] == [at("2030-01-01T10:05:00+00:00")]


def test_a_zombie_whose_commit_is_refused_does_not_fire() -> None:
    fake = Scheduler((EVERY_MINUTE,), now="2030-01-01T10:05:30+00:00")
    fake.consumer.fenced = True
    fake.take_over(FireRecord("minutely", SINCE, at("2030-01-01T10:04:00+00:00")))
    assert fake.enqueued == []
    fake.consumer.fenced = False
    fake.scheduler.step()
    assert fake.enqueued == [("minutely", at("2030-01-01T10:05:00+00:00"))]


def test_a_failed_enqueue_is_not_recorded_and_is_retried_after_a_delay() -> None:
    from kafka_jobs.exceptions import BrokerUnavailable

    fake = Scheduler((EVERY_MINUTE,), now="2030-01-01T10:05:30+00:00")
    attempts: list[dt.datetime] = []

    def failing(item: RecurringJob, tick: dt.datetime) -> Job:
        attempts.append(tick)
        raise BrokerUnavailable("down")

    fake.scheduler.enqueue = failing
    fake.take_over(FireRecord("minutely", SINCE, at("2030-01-01T10:04:00+00:00")))
    fake.scheduler.step()
    assert len(attempts) == 1
    assert fake.written == []
    fake.now += dt.timedelta(seconds=1)
    fake.scheduler.enqueue = fake._enqueue
    fake.scheduler.step()
    assert fake.enqueued == [("minutely", at("2030-01-01T10:05:00+00:00"))]


def test_the_scheduler_consumer_is_in_its_own_group_on_the_schedule_topic() -> None:
    fake = Scheduler((EVERY_MINUTE,), now="2030-01-01T10:05:30+00:00")
    assert fake.consumer.config["group.id"] == "workers.scheduler"
    assert fake.consumer.topics == ["kafka_jobs.schedules"]
    assert fake.consumer.config["partition.assignment.strategy"] == "range"
