"""The in-process backends, deferral to transaction commit, and the Kafka backend's checks before producing."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone, translation

from kafka_jobs import EncodeError, InvalidJob, Job, UnroutedQueue, perform_all_later, signals
from kafka_jobs.backends import get_backend
from kafka_jobs.backends import kafka as kafka_backend
from kafka_jobs.backends.inline import InlineBackend
from kafka_jobs.backends.recording import RecordingBackend
from kafka_jobs.backends.threadpool import ThreadPoolBackend
from kafka_jobs.producer import OutgoingMessage
from kafka_jobs.testing import capture_jobs, enqueued_jobs, perform_enqueued_jobs

ran: list[tuple[Job, tuple[Any, ...], dict[str, Any]]] = []
async_done = threading.Event()
async_ran_on: list[str] = []


class TrackJob(Job):
    queue_as = "single"

    def perform(self, *args: Any, **kwargs: Any) -> None:
        ran.append((self, args, kwargs))


class ImmediateJob(Job):
    enqueue_after_commit = False

    def perform(self, tag: str) -> None:
        ran.append((self, (tag,), {}))


class ChainJob(Job):
    def perform(self, depth: int) -> None:
        ran.append((self, (depth,), {}))
        if depth > 0:
            ChainJob.perform_later(depth - 1)


class AsyncJob(Job):
    def perform(self, tag: str) -> None:
        async_ran_on.append(threading.current_thread().name)
        ran.append((self, (tag,), {}))
        async_done.set()


class NowhereJob(Job):
    queue_as = "nowhere"

    def perform(self) -> None:
        pass


def tenant_of(job: Job) -> Any:
    return job.kwargs["tenant"]


class KeyedSyncJob(Job):
    queue_as = "wide"
    kafka_options = {"dispatch_method": "produce_sync", "partitioner": tenant_of}

    def perform(self, tenant: str) -> None:
        pass


class ExplicitPartitionJob(Job):
    queue_as = "wide"
    kafka_options = {"partitioner": lambda job: job.args[0], "partition_key_type": "partition"}

    def perform(self, partition: int) -> None:
        pass


@pytest.fixture(autouse=True)
def _reset_records() -> Iterator[None]:
    ran.clear()
    async_ran_on.clear()
    async_done.clear()
    yield
    ran.clear()


class FakeProducer:
    """Stands in for the Kafka producer: records what would be produced."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[OutgoingMessage], bool]] = []

    def produce(self, messages: list[OutgoingMessage], *, sync: bool) -> None:
        self.calls.append((list(messages), sync))


@pytest.fixture
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProducer]:
    producer = FakeProducer()
    monkeypatch.setattr(kafka_backend, "get_producer", lambda: producer)
    monkeypatch.setattr(kafka_backend, "close_producer", lambda: None)
    with override_settings(JOB_BACKEND="kafka"):
        yield producer


# Backend selection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [("inline", InlineBackend), ("test", RecordingBackend), ("async", ThreadPoolBackend)],
)
def test_job_backend_setting_selects_the_backend(name: str, cls: type) -> None:
    with override_settings(JOB_BACKEND=name):
        backend = get_backend()
        assert isinstance(backend, cls)
        assert get_backend() is backend  # one instance until settings change


# inline --------------------------------------------------------------------------------------------------


@override_settings(JOB_BACKEND="inline")
def test_inline_runs_at_once_from_the_encoded_form() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.UTC)
    job = TrackJob.perform_later(1, (2, 3), Decimal("4.5"), when=when, ids=[uuid.UUID(int=9)])

    assert len(ran) == 1
    performed, args, kwargs = ran[0]
    assert performed is not job  # decoded again, as a worker would
    assert performed.job_id == job.job_id
    assert args == (1, (2, 3), Decimal("4.5"))
    assert isinstance(args[1], tuple)
    assert kwargs == {"when": when, "ids": [uuid.UUID(int=9)]}
    assert performed.executions == 1
    assert job.successfully_enqueued is True


@override_settings(JOB_BACKEND="inline")
def test_inline_propagates_the_job_error() -> None:
    class Boom(Exception):
        pass

    def explode(*args: Any, **kwargs: Any) -> None:
        raise Boom

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TrackJob, "perform", explode)
        with pytest.raises(Boom):
            TrackJob.perform_later()


# test (recording) ----------------------------------------------------------------------------------------


def test_test_backend_records_without_running() -> None:
    with capture_jobs() as backend:
        job = TrackJob.perform_later("a", k=1)

        assert backend.enqueued_jobs() == [job]
        assert ran == []
        assert job.successfully_enqueued is True


def test_perform_enqueued_runs_recorded_jobs_and_those_they_enqueue() -> None:
    with capture_jobs() as backend:
        ChainJob.perform_later(2)
        TrackJob.perform_later("x")

        assert perform_enqueued_jobs() == 4

        assert [(type(job).__name__, args) for job, args, _ in ran] == [
            ("ChainJob", (2,)),
            ("TrackJob", ("x",)),
            ("ChainJob", (1,)),
            ("ChainJob", (0,)),
        ]
        assert enqueued_jobs() == []
        assert len(backend.performed) == 4


def test_perform_enqueued_only_runs_the_given_class() -> None:
    with capture_jobs():
        TrackJob.perform_later("x")
        ChainJob.perform_later(0)

        assert perform_enqueued_jobs(only=ChainJob) == 1
        assert [type(job) for job in enqueued_jobs()] == [TrackJob]


# async (thread pool) -------------------------------------------------------------------------------------


def test_async_backend_runs_the_job_on_a_pool_thread() -> None:
    with override_settings(JOB_BACKEND="async"):
        AsyncJob.perform_later("bg")

        assert async_done.wait(timeout=10), "the async backend did not run the job within 10 s"
    assert async_ran_on[0].startswith("kafka-jobs-async")
    assert async_ran_on[0] != threading.current_thread().name
    assert ran[0][1] == ("bg",)


# Enqueue after commit ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_enqueue_inside_atomic_dispatches_after_commit() -> None:
    enqueued: list[Job] = []

    def on_enqueued(sender: type[Job], job: Job, **_: Any) -> None:
        enqueued.append(job)

    signals.job_enqueued.connect(on_enqueued)
    try:
        with capture_jobs():
            with transaction.atomic():
                job = TrackJob.perform_later("in tx")
                assert enqueued_jobs() == []
                assert enqueued == []
                assert job.successfully_enqueued is False
            assert enqueued_jobs() == [job]
            assert enqueued == [job]
            assert job.successfully_enqueued is True
    finally:
        signals.job_enqueued.disconnect(on_enqueued)


@pytest.mark.django_db(transaction=True)
@override_settings(JOB_BACKEND="inline")
def test_inline_job_enqueued_in_a_transaction_runs_after_commit() -> None:
    with transaction.atomic():
        TrackJob.perform_later("later")
        assert ran == []
    assert [args for _, args, _ in ran] == [("later",)]


@pytest.mark.django_db(transaction=True)
def test_enqueue_inside_rolled_back_atomic_is_never_dispatched() -> None:
    with capture_jobs():
        with pytest.raises(RuntimeError), transaction.atomic():
            TrackJob.perform_later("lost")
            raise RuntimeError("rollback")

        assert enqueued_jobs() == []


@pytest.mark.django_db(transaction=True)
def test_enqueue_inside_rolled_back_savepoint_is_dropped_and_the_rest_dispatched() -> None:
    with capture_jobs():
        with transaction.atomic():
            TrackJob.perform_later("kept")
            with pytest.raises(RuntimeError), transaction.atomic():
                TrackJob.perform_later("dropped")
                raise RuntimeError("rollback savepoint")

        assert [job.args for job in enqueued_jobs()] == [["kept"]]


@pytest.mark.django_db(transaction=True)
def test_perform_all_later_inside_atomic_dispatches_the_batch_after_commit() -> None:
    with capture_jobs():
        with transaction.atomic():
            assert perform_all_later([TrackJob(1), TrackJob(2)]) == 2
            assert enqueued_jobs() == []
        assert [job.args for job in enqueued_jobs()] == [[1], [2]]


@pytest.mark.django_db(transaction=True)
def test_job_can_opt_out_of_waiting_for_commit() -> None:
    with capture_jobs():
        with pytest.raises(RuntimeError), transaction.atomic():
            ImmediateJob.perform_later("now")
            assert len(enqueued_jobs()) == 1
            raise RuntimeError("rollback")

        assert len(enqueued_jobs()) == 1


@pytest.mark.django_db(transaction=True)
def test_setting_can_turn_off_waiting_for_commit() -> None:
    overrides = {"KAFKA_JOBS": {"ROUTES": "tests.kafka_routes", "ENQUEUE_AFTER_COMMIT": False}}
    with override_settings(**overrides), capture_jobs(), transaction.atomic():
        TrackJob.perform_later("now")
        assert len(enqueued_jobs()) == 1


def test_without_a_transaction_dispatch_is_immediate() -> None:
    with capture_jobs():
        TrackJob.perform_later("x")
        assert len(enqueued_jobs()) == 1


# Encoding happens at enqueue time ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["test", "inline", "async"])
def test_unserializable_argument_raises_encode_error_at_perform_later(backend: str) -> None:
    with override_settings(JOB_BACKEND=backend), pytest.raises(EncodeError, match="set"):
        TrackJob.perform_later({1, 2})
    assert ran == []


@pytest.mark.django_db(transaction=True)
def test_encode_error_is_raised_inside_the_transaction_not_at_commit() -> None:
    with capture_jobs(), transaction.atomic():
        with pytest.raises(EncodeError):
            TrackJob.perform_later(object())
        assert enqueued_jobs() == []


def test_perform_all_later_encodes_every_job_before_dispatching_any() -> None:
    with capture_jobs():
        with pytest.raises(EncodeError):
            perform_all_later([TrackJob(1), TrackJob(float("nan"))])
        assert enqueued_jobs() == []


# kafka ---------------------------------------------------------------------------------------------------


def test_kafka_backend_refuses_an_unrouted_queue_before_producing(fake_producer: FakeProducer) -> None:
    with pytest.raises(UnroutedQueue, match="'nowhere'"):
        NowhereJob.perform_later()
    with pytest.raises(UnroutedQueue):
        TrackJob.set(queue="typo").perform_later()
    with pytest.raises(UnroutedQueue):
        perform_all_later([TrackJob(1), NowhereJob()])

    assert fake_producer.calls == []


def test_kafka_backend_allows_unrouted_queues_when_not_required(fake_producer: FakeProducer) -> None:
    overrides = {"ROUTES": "tests.kafka_routes", "REQUIRE_ROUTE": False, "QUEUE_PREFIX": "p."}
    with override_settings(KAFKA_JOBS=overrides):
        NowhereJob.perform_later()

    [(messages, _)] = fake_producer.calls
    assert messages[0].topic == "p.nowhere"


def test_kafka_backend_produces_to_the_routed_topic_with_headers(fake_producer: FakeProducer) -> None:
    job = TrackJob.perform_later("x")

    [(messages, sync)] = fake_producer.calls
    [message] = messages
    assert sync is False  # produce_async by default
    assert message.topic == "single"
    assert message.key is None
    assert message.partition is None
    assert dict(message.headers or []) == {"kj-job": job.job_name.encode(), "kj-id": job.job_id.encode()}
    assert job.successfully_enqueued is True


def test_kafka_backend_keys_by_partitioner_and_waits_for_sync_jobs(fake_producer: FakeProducer) -> None:
    KeyedSyncJob.perform_later(tenant="acme")
    KeyedSyncJob.set(partition_key=42).perform_later(tenant="acme")

    (first, first_sync), (second, _) = fake_producer.calls
    assert first_sync is True
    assert first[0].key == b"acme"
    assert second[0].key == b"42"  # an explicit partition_key wins over the partitioner


def test_kafka_backend_sends_to_an_explicit_partition(fake_producer: FakeProducer) -> None:
    ExplicitPartitionJob.perform_later(4)
    TrackJob.set(partition=1).perform_later()

    (first, _), (second, _) = fake_producer.calls
    assert (first[0].partition, first[0].key) == (4, None)
    assert second[0].partition == 1


def test_kafka_backend_batches_perform_all_later_by_dispatch_method(fake_producer: FakeProducer) -> None:
    assert perform_all_later([TrackJob(1), KeyedSyncJob(tenant="t"), TrackJob(2)]) == 3

    assert [(len(messages), sync) for messages, sync in fake_producer.calls] == [(3, False)]


scheduled_ran = threading.Event()
scheduled_ran_at: list[float] = []


class ScheduledProbeJob(Job):
    enqueue_after_commit = False

    def perform(self) -> None:
        scheduled_ran_at.append(time.monotonic())
        scheduled_ran.set()


def test_async_backend_runs_a_scheduled_job_when_it_is_due_not_before(settings: Any) -> None:
    settings.JOB_BACKEND = "async"
    scheduled_ran.clear()
    scheduled_ran_at.clear()
    enqueued = time.monotonic()
    ScheduledProbeJob.set(wait=0.3).perform_later()
    assert scheduled_ran.wait(10), "the scheduled job never ran"
    assert scheduled_ran_at[0] - enqueued >= 0.3


def test_inline_backend_refuses_a_job_scheduled_for_later(settings: Any) -> None:
    settings.JOB_BACKEND = "inline"
    scheduled_ran.clear()
    with pytest.raises(InvalidJob, match=r"cannot run .* at"):
        ScheduledProbeJob.set(wait=60).perform_later()
    assert not scheduled_ran.is_set()
    ScheduledProbeJob.set(wait_until=timezone.now() - dt.timedelta(seconds=1)).perform_later()  # due: runs now
    assert scheduled_ran.is_set()


# The backend contract: validate_job, supports_* flags ----------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "supports_defer"), [("kafka", True), ("async", True), ("test", True), ("inline", False)]
)
def test_supports_defer_says_which_backends_take_scheduled_jobs(alias: str, supports_defer: bool) -> None:
    with override_settings(JOB_BACKEND=alias):
        backend = get_backend()
        job = ScheduledProbeJob()
        job.scheduled_at = timezone.now() + dt.timedelta(minutes=1)

        assert backend.supports_defer is supports_defer
        assert backend.alias == alias
        if supports_defer:
            backend.validate_job(job)
        else:
            with pytest.raises(InvalidJob, match=r"JOB_BACKEND = 'inline' .*cannot run .*'kafka', 'async', 'test'"):
                backend.validate_job(job)


@pytest.mark.parametrize(
    ("attribute", "value", "match"),
    [
        ("queue_name", "no spaces", "not a valid queue name"),
        ("queue_name", "default\n", "not a valid queue name"),
        ("partition", -1, "partition must be an int >= 0"),
        ("partition", True, "partition must be an int >= 0"),
        ("scheduled_at", dt.datetime(2030, 1, 1), "timezone-aware"),
    ],
)
def test_validate_job_refuses_attributes_set_by_hand(attribute: str, value: Any, match: str) -> None:
    job = TrackJob()
    setattr(job, attribute, value)

    with capture_jobs() as backend:
        with pytest.raises(InvalidJob, match=match):
            backend.enqueue(job)
        assert backend.enqueued_jobs() == []


def test_kafka_validate_job_refuses_an_unrouted_queue(fake_producer: FakeProducer) -> None:
    backend = get_backend()

    with pytest.raises(UnroutedQueue, match="'nowhere'"):
        backend.validate_job(NowhereJob())
    backend.validate_job(TrackJob())


def test_no_backend_hides_validation_in_encode() -> None:
    from kafka_jobs.backends import BACKENDS, BaseBackend, backend_class

    for alias in BACKENDS:
        assert backend_class(alias).encode is BaseBackend.encode, alias


# perform_all_later keeps the batch's order (issue 7, item 5) -----------------------------------------------


class AsyncBatchJob(Job):
    queue_as = "single"

    def perform(self, seq: int) -> None:
        pass


class SyncBatchJob(AsyncBatchJob):
    kafka_options = {"dispatch_method": "produce_sync", "dispatch_many_method": "produce_many_sync"}


def seqs(messages: list[OutgoingMessage]) -> list[int]:
    from kafka_jobs.serializer import JsonSerializer

    return [JsonSerializer().loads(message.value).args[0] for message in messages]


def test_kafka_mixed_batch_is_produced_in_order_with_sync_runs_waiting(fake_producer: FakeProducer) -> None:
    jobs = [AsyncBatchJob(0), SyncBatchJob(1), SyncBatchJob(2), AsyncBatchJob(3), SyncBatchJob(4)]

    assert perform_all_later(jobs) == 5

    assert [(seqs(messages), sync) for messages, sync in fake_producer.calls] == [
        ([0], False),
        ([1, 2], True),
        ([3], False),
        ([4], True),
    ]


# perform_all_later decides enqueue_after_commit per job (issue 7, item 6) ----------------------------------


class WaitsForCommitJob(Job):
    enqueue_after_commit = True

    def perform(self, tag: str) -> None:
        pass


class GoesAtOnceJob(Job):
    enqueue_after_commit = False

    def perform(self, tag: str) -> None:
        pass


def tags(jobs: list[Job]) -> list[str]:
    return [job.args[0] for job in jobs]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", [WaitsForCommitJob, GoesAtOnceJob])
def test_rolled_back_batch_sends_only_the_jobs_that_do_not_wait_for_commit(first: type[Job]) -> None:
    second = GoesAtOnceJob if first is WaitsForCommitJob else WaitsForCommitJob
    with capture_jobs():
        with pytest.raises(RuntimeError), transaction.atomic():
            perform_all_later([first("a"), second("b"), first("c")])
            sent_inside = tags(enqueued_jobs())
            raise RuntimeError("rollback")

        expected = ["a", "c"] if first is GoesAtOnceJob else ["b"]
        assert sent_inside == expected
        assert tags(enqueued_jobs()) == expected


@pytest.mark.django_db(transaction=True)
def test_committed_mixed_batch_sends_the_immediate_jobs_first_each_group_in_batch_order() -> None:
    enqueued: list[str] = []

    def on_enqueued(sender: type[Job], job: Job, **_: Any) -> None:
        enqueued.append(job.args[0])

    batch = [WaitsForCommitJob("w1"), GoesAtOnceJob("n1"), WaitsForCommitJob("w2"), GoesAtOnceJob("n2")]
    signals.job_enqueued.connect(on_enqueued)
    try:
        with capture_jobs(), transaction.atomic():
            assert perform_all_later(batch) == 4
            assert [job.successfully_enqueued for job in batch] == [False, True, False, True]
    finally:
        signals.job_enqueued.disconnect(on_enqueued)

    assert enqueued == ["n1", "n2", "w1", "w2"]
    assert all(job.successfully_enqueued for job in batch)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_mixed_batch_is_sent_in_batch_order() -> None:
    with capture_jobs():
        perform_all_later([WaitsForCommitJob("w1"), GoesAtOnceJob("n1"), WaitsForCommitJob("w2")])

        assert tags(enqueued_jobs()) == ["w1", "n1", "w2"]


# The Kafka message is built at enqueue ------------------------------------------------------------------


class BrokenPartitionerJob(Job):
    queue_as = "wide"
    kafka_options = {"partitioner": lambda job: job.args[0]["missing"]}

    def perform(self, data: dict[str, Any]) -> None:
        pass


class BadPartitionNumberJob(Job):
    queue_as = "wide"
    kafka_options = {"partitioner": lambda job: job.args[0], "partition_key_type": "partition"}

    def perform(self, value: Any) -> None:
        pass


@pytest.mark.django_db(transaction=True)
def test_a_failing_partitioner_raises_at_enqueue_not_at_commit(fake_producer: FakeProducer) -> None:
    with transaction.atomic():
        with pytest.raises(KeyError, match="missing"):
            BrokenPartitionerJob.perform_later({})
        ok = TrackJob.perform_later("still fine")

    [([message], _)] = fake_producer.calls
    assert dict(message.headers or [])["kj-id"] == ok.job_id.encode()


@pytest.mark.parametrize("value", ["three", -1, None, [1]])
def test_a_partition_number_that_is_not_one_is_an_invalid_job(fake_producer: FakeProducer, value: Any) -> None:
    if value is None:  # no value: no partition chosen, the default partitioner decides
        BadPartitionNumberJob.perform_later(value)
        assert fake_producer.calls[0][0][0].partition is None
        return
    with pytest.raises(InvalidJob, match=r"partitioner must return a partition number >= 0"):
        BadPartitionNumberJob.perform_later(value)
    assert fake_producer.calls == []


def test_set_partition_wins_over_a_partitioner_that_chooses_partitions(fake_producer: FakeProducer) -> None:
    ExplicitPartitionJob.set(partition=2).perform_later(4)

    [([message], _)] = fake_producer.calls
    assert message.partition == 2


def test_changing_settings_closes_the_backend_it_replaces(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []
    monkeypatch.setattr(kafka_backend, "close_producer", lambda: closed.append("producer"))
    with override_settings(JOB_BACKEND="kafka"):
        get_backend()
        assert closed == []

    assert closed == ["producer"]


@pytest.mark.django_db(transaction=True)
def test_a_backend_that_cannot_defer_to_commit_dispatches_inside_the_transaction_at_once() -> None:
    class NoDeferRecordingBackend(RecordingBackend):
        supports_defer_to_commit = False

    backend = NoDeferRecordingBackend("test")
    with pytest.raises(RuntimeError), transaction.atomic():
        backend.enqueue(TrackJob("now"))
        assert len(backend.enqueued_jobs()) == 1
        raise RuntimeError("rollback")

    assert len(backend.enqueued_jobs()) == 1


together = threading.Barrier(5, timeout=10)


class TogetherJob(Job):
    enqueue_after_commit = False

    def perform(self, tag: str) -> None:
        together.wait()  # breaks unless five jobs run at the same time
        ran.append((self, (tag,), {}))


def test_async_backend_runs_async_threads_jobs_at_the_same_time() -> None:
    together.reset()
    with override_settings(KAFKA_JOBS={"ROUTES": "tests.kafka_routes", "ASYNC_THREADS": 5}, JOB_BACKEND="async"):
        for n in range(5):
            TogetherJob.perform_later(str(n))
        get_backend().close()  # waits for the five jobs

    assert sorted(args[0] for _, args, _ in ran) == ["0", "1", "2", "3", "4"]


def test_a_batch_records_the_callers_language_and_time_zone_on_each_job_unless_one_has_its_own() -> None:
    own = TrackJob("own")
    own.locale, own.timezone = "de", "Asia/Tokyo"
    with capture_jobs(), translation.override("fr"), timezone.override("Europe/Paris"):
        perform_all_later([TrackJob("a"), own, TrackJob("b")])
        single = TrackJob.perform_later("c")
        jobs = enqueued_jobs()

    assert [(job.locale, job.timezone) for job in jobs] == [
        ("fr", "Europe/Paris"),
        ("de", "Asia/Tokyo"),
        ("fr", "Europe/Paris"),
        ("fr", "Europe/Paris"),
    ]
    assert jobs[3] is single
