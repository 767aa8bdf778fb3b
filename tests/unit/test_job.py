"""The Job class: options validated at definition, copy-on-write inheritance, set(), perform_now, registry."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone, translation

from kafka_jobs import ConfiguredJob, InvalidJob, Job, JobNotRegistered, clock, perform_all_later, registry
from kafka_jobs.options import KafkaOptions
from kafka_jobs.serializer import JsonSerializer
from kafka_jobs.testing import capture_jobs, enqueued_jobs


def by_customer(job: Job) -> Any:
    return job.kwargs.get("customer")


class BaseDispatchJob(Job):
    kafka_options = {"dispatch_method": "produce_sync", "partitioner": by_customer}

    def perform(self) -> None:
        pass


class ChildDispatchJob(BaseDispatchJob):
    kafka_options = {"dispatch_many_method": "produce_many_sync"}


class GrandchildDispatchJob(ChildDispatchJob):
    kafka_options = {"dispatch_method": "produce_async"}


class AddJob(Job):
    queue_as = "single"

    def perform(self, a: int, b: int = 0) -> int:
        return a + b


class ContextJob(Job):
    def perform(self) -> tuple[str | None, str]:
        return translation.get_language(), timezone.get_current_timezone_name()


class AbstractBaseJob(Job):
    abstract = True


class NamedJob(Job):
    job_name = "billing.charge"

    def perform(self) -> None:
        pass


# Definition-time validation ------------------------------------------------------------------------------


def test_unknown_kafka_option_fails_at_class_definition() -> None:
    with pytest.raises(InvalidJob, match=r"BadOptionJob\.kafka_options has unknown option\(s\) \['dispatch'\]"):

        class BadOptionJob(Job):
            kafka_options = {"dispatch": "produce_sync"}

            def perform(self) -> None:
                pass


def test_unknown_dispatch_method_fails_at_class_definition() -> None:
    with pytest.raises(InvalidJob, match=r"'produce_later'.*'produce_async', 'produce_sync'"):

        class BadDispatchJob(Job):
            kafka_options = {"dispatch_method": "produce_later"}

            def perform(self) -> None:
                pass


def test_unknown_dispatch_many_method_fails_at_class_definition() -> None:
    with pytest.raises(InvalidJob, match="dispatch_many_method"):

        class BadManyJob(Job):
            kafka_options = {"dispatch_many_method": "produce_sync"}

            def perform(self) -> None:
                pass


def test_unknown_partition_key_type_fails_at_class_definition() -> None:
    with pytest.raises(InvalidJob, match=r"partition_key_type'\] is 'offset'"):

        class BadKeyTypeJob(Job):
            kafka_options = {"partition_key_type": "offset"}

            def perform(self) -> None:
                pass


def test_non_callable_partitioner_fails_at_class_definition() -> None:
    with pytest.raises(InvalidJob, match="partitioner"):

        class BadPartitionerJob(Job):
            kafka_options = {"partitioner": "customer_id"}

            def perform(self) -> None:
                pass


def test_kafka_options_must_be_a_dict() -> None:
    with pytest.raises(InvalidJob, match="kafka_options must be a dict"):

        class ListOptionsJob(Job):
            kafka_options = [("dispatch_method", "produce_sync")]

            def perform(self) -> None:
                pass


def test_missing_perform_fails_at_class_definition() -> None:
    with pytest.raises(InvalidJob, match=r"NoPerformJob must implement perform"):

        class NoPerformJob(Job):
            pass


def test_abstract_job_needs_no_perform_and_is_not_registered() -> None:
    assert AbstractBaseJob.job_name not in registry.all_jobs()


@pytest.mark.parametrize("queue", ["", "has space", "slash/queue", "x" * 201, 7])
def test_invalid_queue_as_fails_at_class_definition(queue: Any) -> None:
    with pytest.raises(InvalidJob, match="not a valid queue name"):

        class BadQueueJob(Job):
            queue_as = queue

            def perform(self) -> None:
                pass


def test_async_perform_fails_at_class_definition() -> None:
    with pytest.raises(InvalidJob, match=r"AsyncPerformJob\.perform is async"):

        class AsyncPerformJob(Job):
            async def perform(self) -> None:
                pass


def test_invalid_enqueue_after_commit_fails_at_class_definition() -> None:
    with pytest.raises(InvalidJob, match="enqueue_after_commit"):

        class BadCommitJob(Job):
            enqueue_after_commit = "yes"

            def perform(self) -> None:
                pass


# Copy-on-write inheritance -------------------------------------------------------------------------------


def test_subclass_override_changes_only_that_option_of_the_subclass() -> None:
    assert BaseDispatchJob.options == KafkaOptions(
        dispatch_method="produce_sync", dispatch_many_method="produce_many_async", partitioner=by_customer
    )
    assert ChildDispatchJob.options == KafkaOptions(
        dispatch_method="produce_sync", dispatch_many_method="produce_many_sync", partitioner=by_customer
    )
    assert GrandchildDispatchJob.options == KafkaOptions(
        dispatch_method="produce_async", dispatch_many_method="produce_many_sync", partitioner=by_customer
    )


def test_job_without_kafka_options_has_the_defaults() -> None:
    assert AddJob.options == KafkaOptions()
    assert Job.options == KafkaOptions()


# set() ---------------------------------------------------------------------------------------------------


def test_set_with_wait_and_wait_until_is_refused() -> None:
    with pytest.raises(InvalidJob, match="wait or wait_until, not both"):
        AddJob.set(wait=5, wait_until=timezone.now())


def test_set_with_naive_wait_until_is_refused() -> None:
    with pytest.raises(InvalidJob, match="timezone-aware"):
        AddJob.set(wait_until=dt.datetime(2030, 1, 1))


@pytest.mark.parametrize("wait", ["5", True, [1], float("nan"), float("inf")])
def test_set_with_invalid_wait_is_refused(wait: Any) -> None:
    with pytest.raises(InvalidJob, match="wait must be a timedelta or seconds"):
        AddJob.set(wait=wait)


@pytest.mark.parametrize("partition", [-1, "0", True, 1.0])
def test_set_with_invalid_partition_is_refused(partition: Any) -> None:
    with pytest.raises(InvalidJob, match="partition must be an int >= 0"):
        AddJob.set(partition=partition)


def test_set_with_invalid_queue_is_refused() -> None:
    with pytest.raises(InvalidJob, match="not a valid queue name"):
        AddJob.set(queue="no spaces")


class FakeClock:
    """Stands in for ``kafka_jobs.clock.now``: time moves only when the test says."""

    def __init__(self) -> None:
        self.current = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake)
    return fake


def test_set_wait_counts_from_the_enqueue_not_from_set(fake_clock: FakeClock) -> None:
    later = AddJob.set(wait=30)  # kept, as at module level, and used two seconds later
    fake_clock.advance(2)

    with capture_jobs() as backend:
        job = later.perform_later(1)
        [(_, payload)] = backend.enqueued

    assert job.enqueued_at == fake_clock.current
    assert job.scheduled_at == fake_clock.current + dt.timedelta(seconds=30)
    envelope = JsonSerializer().loads(payload)
    assert (envelope.enqueued_at, envelope.scheduled_at) == (job.enqueued_at, job.scheduled_at)


def test_a_kept_set_schedules_each_enqueue_from_its_own_time(fake_clock: FakeClock) -> None:
    later = AddJob.set(wait=dt.timedelta(minutes=5))

    with capture_jobs():
        first = later.perform_later(1)
        fake_clock.advance(60)
        second = later.perform_later(2)

    assert second.scheduled_at is not None and first.scheduled_at is not None
    assert second.scheduled_at - first.scheduled_at == dt.timedelta(seconds=60)


def test_a_built_job_with_wait_is_scheduled_when_perform_all_later_enqueues_it(fake_clock: FakeClock) -> None:
    job = AddJob.set(wait=10).build(1)
    assert job.scheduled_at is None  # not enqueued yet: no due time
    fake_clock.advance(5)

    with capture_jobs():
        perform_all_later([job])

    assert job.scheduled_at == fake_clock.current + dt.timedelta(seconds=10)


def test_a_job_enqueued_again_is_scheduled_from_its_latest_enqueue(fake_clock: FakeClock) -> None:
    job = AddJob.set(wait=10).build(1)

    with capture_jobs() as backend:
        backend.enqueue(job)
        fake_clock.advance(5)
        backend.enqueue(job)

    assert job.scheduled_at == fake_clock.current + dt.timedelta(seconds=10)


def test_set_wait_until_stays_absolute(fake_clock: FakeClock) -> None:
    due = fake_clock.current + dt.timedelta(hours=1)
    later = AddJob.set(wait_until=due)
    fake_clock.advance(600)

    with capture_jobs():
        job = later.perform_later(1)

    assert job.scheduled_at == due


def test_set_wait_schedules_an_aware_time_even_without_use_tz(settings: Any) -> None:
    settings.USE_TZ = False

    with capture_jobs():
        job = AddJob.set(wait=5).perform_later(1)

    assert job.scheduled_at is not None
    assert timezone.is_aware(job.scheduled_at)


def test_set_applies_queue_partition_and_key_to_the_job_only() -> None:
    configured = AddJob.set(queue="low", partition_key="k1", partition=2)
    job = configured.build(1, b=2)

    assert isinstance(configured, ConfiguredJob)
    assert (job.queue_name, job.partition_key, job.partition) == ("low", "k1", 2)
    assert (job.args, job.kwargs) == ([1], {"b": 2})
    assert AddJob(1).queue_name == "single"


def test_set_perform_later_enqueues_with_the_overrides() -> None:
    with capture_jobs():
        job = AddJob.set(queue="default").perform_later(1)

        assert enqueued_jobs() == [job]
        assert job.queue_name == "default"


# perform_now / perform_later / perform_all_later ---------------------------------------------------------


def test_perform_now_returns_the_result_and_counts_the_execution() -> None:
    assert AddJob.perform_now(2, b=3) == 5
    assert AddJob.set(queue="default").perform_now(4) == 4


def test_perform_now_runs_with_the_job_locale_and_timezone() -> None:
    job = ContextJob()
    job.locale = "fr"
    job.timezone = "Europe/Paris"
    from kafka_jobs.execution import run_job

    with translation.override("en"):
        assert run_job(job) == ("fr", "Europe/Paris")
        assert translation.get_language() == "en"
    assert timezone.get_current_timezone_name() == "UTC"
    assert job.executions == 1


def test_perform_now_without_persisted_context_uses_the_current_one() -> None:
    with translation.override("de"), timezone.override("Asia/Tokyo"):
        assert ContextJob.perform_now() == ("de", "Asia/Tokyo")


def test_perform_later_returns_the_job_with_an_id() -> None:
    with capture_jobs():
        job = AddJob.perform_later(1, b=2)

    assert isinstance(job, AddJob)
    assert job.job_id
    assert job.successfully_enqueued is True


def test_perform_all_later_returns_the_count() -> None:
    with capture_jobs():
        count = perform_all_later([AddJob(1), AddJob(2), ContextJob()])

        assert count == 3
        assert [type(job) for job in enqueued_jobs()] == [AddJob, AddJob, ContextJob]


def test_perform_all_later_of_nothing_returns_zero() -> None:
    with capture_jobs():
        assert perform_all_later([]) == 0


def test_perform_all_later_refuses_non_jobs() -> None:
    with pytest.raises(InvalidJob, match="takes Job instances"):
        perform_all_later([AddJob(1), AddJob])  # type: ignore[list-item]


# Registry ------------------------------------------------------------------------------------------------


def test_job_is_registered_under_module_and_qualname_by_default() -> None:
    assert AddJob.job_name == "tests.unit.test_job.AddJob"
    assert registry.get("tests.unit.test_job.AddJob") is AddJob


def test_explicit_job_name_is_registered() -> None:
    assert registry.get("billing.charge") is NamedJob


def test_unknown_name_raises_job_not_registered() -> None:
    with pytest.raises(JobNotRegistered, match=r"'no\.such\.Job'") as info:
        registry.get("no.such.Job")

    assert info.value.name == "no.such.Job"
    assert isinstance(info.value, LookupError)


def test_registry_get_never_imports_the_named_module() -> None:
    import sys

    name = "tests.unit._never_imported.SomeJob"
    with pytest.raises(JobNotRegistered):
        registry.get(name)
    assert "tests.unit._never_imported" not in sys.modules
    with pytest.raises(JobNotRegistered):
        registry.get("os.system")


def test_non_string_name_raises_job_not_registered() -> None:
    with pytest.raises(JobNotRegistered):
        registry.get(["unhashable"])  # type: ignore[arg-type]


def test_autodiscover_imports_the_jobs_module_and_every_module_of_a_jobs_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "kj_discover_app" / "jobs"
    (package / "billing").mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "billing" / "__init__.py").write_text("")
    job_source = "from kafka_jobs import Job\n\nclass {0}(Job):\n    def perform(self):\n        pass\n"
    (package / "mail.py").write_text(job_source.format("DiscoveredMailJob"))
    (package / "billing" / "invoice.py").write_text(job_source.format("DiscoveredInvoiceJob"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry.apps, "get_app_configs", lambda: [SimpleNamespace(name="kj_discover_app")])
    try:
        registry.autodiscover()

        assert registry.get("kj_discover_app.jobs.mail.DiscoveredMailJob").__name__ == "DiscoveredMailJob"
        assert registry.get("kj_discover_app.jobs.billing.invoice.DiscoveredInvoiceJob")
    finally:
        for name in [name for name in sys.modules if name.startswith("kj_discover_app")]:
            del sys.modules[name]
        with registry._lock:
            for name in [name for name in registry._jobs if name.startswith("kj_discover_app.")]:
                del registry._jobs[name]


def test_two_classes_cannot_share_a_job_name() -> None:
    with pytest.raises(InvalidJob, match=r"'billing\.charge' is already used"):

        class OtherChargeJob(Job):
            job_name = "billing.charge"

            def perform(self) -> None:
                pass

    assert registry.get("billing.charge") is NamedJob
