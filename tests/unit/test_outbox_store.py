"""Outbox enqueue (no broker): the opt-in layers, the row written in the caller's transaction, and rollback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from kafka_jobs import InvalidJob, Job, perform_all_later, signals
from kafka_jobs.backends import get_backend
from kafka_jobs.outbox.models import OutboxMessage
from kafka_jobs.outbox.store import LANES, decode_headers, encode_headers, lane_of, wants_outbox
from kafka_jobs.producer import OutgoingMessage
from kafka_jobs.serializer import JsonSerializer


class PlainJob(Job):
    queue_as = "single"

    def perform(self, n: int) -> None:
        pass


class OutboxJob(PlainJob):
    kafka_options = {"outbox": True}


class NeverOutboxJob(PlainJob):
    kafka_options = {"outbox": False}


@pytest.fixture
def kafka_backend() -> Iterator[None]:
    """The Kafka backend (no broker is reached: outbox rows only), outbox off globally."""
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS={**settings.KAFKA_JOBS, "OUTBOX": False}):
        yield


def rows() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.order_by("id"))


@pytest.mark.parametrize(
    ("job", "global_outbox", "expected"),
    [
        (PlainJob(1), False, False),
        (PlainJob(1), True, True),
        (OutboxJob(1), False, True),
        (NeverOutboxJob(1), True, False),
        (PlainJob.set(outbox=True).build(1), False, True),
        (OutboxJob.set(outbox=False).build(1), True, False),
        (PlainJob.set(outbox="default").build(1), False, True),
    ],
    ids=["plain", "global", "class", "class-refuses", "call", "call-refuses", "call-alias"],
)
def test_the_call_overrides_the_class_which_overrides_the_setting(
    job: Job, global_outbox: bool, expected: bool
) -> None:
    with override_settings(KAFKA_JOBS={**settings.KAFKA_JOBS, "OUTBOX": global_outbox}):
        from kafka_jobs.conf import get_settings

        assert wants_outbox(job, get_settings()) is expected


@pytest.mark.parametrize("bad", [1, "yes", []])
def test_a_bad_outbox_option_is_refused_where_it_is_given(bad: Any) -> None:
    with pytest.raises(InvalidJob, match="outbox"):
        type("BadOutboxJob", (PlainJob,), {"kafka_options": {"outbox": bad}, "__module__": __name__})
    if bad != "yes":  # a string names a database
        with pytest.raises(InvalidJob, match="outbox"):
            PlainJob.set(outbox=bad)


def test_messages_of_one_key_share_a_lane_and_headers_survive_the_row() -> None:
    one = OutgoingMessage("t", b"v", key=b"customer-7")
    assert lane_of(one, "a") == lane_of(OutgoingMessage("t", b"w", key=b"customer-7"), "b")
    assert len({lane_of(OutgoingMessage("t", b"v", key=str(k).encode()), "x") for k in range(200)}) > 50
    assert 0 <= lane_of(OutgoingMessage("t", b"v"), "job-id") < LANES
    headers = [("kj-job", b"x.Y"), ("bin", bytes(range(256)))]
    assert decode_headers(encode_headers(headers)) == headers


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_row_and_no_enqueued_signal(kafka_backend: None) -> None:
    sent: list[Job] = []
    signals.job_enqueued.connect(lambda sender, job, **_: sent.append(job), weak=False, dispatch_uid="outbox-rb")
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            job = OutboxJob.perform_later(1)
            assert len(rows()) == 1  # written in the transaction
            raise RuntimeError("roll back")
    finally:
        signals.job_enqueued.disconnect(dispatch_uid="outbox-rb")
    assert rows() == []
    assert sent == [] and not job.successfully_enqueued


@pytest.mark.django_db(transaction=True)
def test_a_committed_row_holds_the_whole_message_and_the_job_counts_as_enqueued_at_commit(kafka_backend: None) -> None:
    with transaction.atomic():
        job = PlainJob.set(outbox=True, partition_key="customer-7").perform_later(5)
        assert not job.successfully_enqueued
    assert job.successfully_enqueued
    (row,) = rows()
    assert (row.job_id, row.job_name, row.topic) == (job.job_id, PlainJob.job_name, "single")
    assert bytes(row.key) == b"customer-7" and row.partition is None and row.failed_at is None
    assert ("kj-id", job.job_id.encode()) in decode_headers(row.headers)
    envelope = JsonSerializer().loads(bytes(row.value))
    assert (envelope.job_id, envelope.args) == (job.job_id, [5])


@pytest.mark.django_db(transaction=True)
def test_a_batch_writes_its_outbox_jobs_in_order_and_dispatches_the_others(kafka_backend: None) -> None:
    recorded: list[Any] = []
    backend = get_backend()
    backend.dispatch_many = lambda batch: recorded.extend(p.job for p in batch)  # type: ignore[method-assign]
    jobs = [OutboxJob(0), NeverOutboxJob(1), OutboxJob(2), OutboxJob(3)]
    with transaction.atomic():
        assert perform_all_later(jobs) == 4
    assert [JsonSerializer().loads(bytes(r.value)).args for r in rows()] == [[0], [2], [3]]
    assert recorded == [jobs[1]]


@pytest.mark.django_db(transaction=True)
def test_an_unknown_database_alias_is_refused_at_enqueue(kafka_backend: None) -> None:
    with pytest.raises(InvalidJob, match="names no database"):
        PlainJob.set(outbox="elsewhere").perform_later(1)


@pytest.mark.django_db(transaction=True)
def test_backends_that_produce_nothing_ignore_the_outbox() -> None:
    with override_settings(JOB_BACKEND="test"), transaction.atomic():
        OutboxJob.perform_later(1)
    assert rows() == []


@pytest.mark.parametrize("command", ["runkafkarelay", "kafkaoutbox"])
def test_the_outbox_commands_refuse_an_unknown_database_alias(command: str) -> None:
    from django.core.management import CommandError, call_command

    args = ["--database", "nowhere"] if command == "runkafkarelay" else ["list", "--database", "nowhere"]
    with pytest.raises(CommandError, match="Unknown database alias"):
        call_command(command, *args)


@pytest.mark.django_db(transaction=True)
def test_the_relay_refuses_a_database_without_the_outbox_table() -> None:
    from django.core.management import CommandError, call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE kafka_jobs_outbox RENAME TO kafka_jobs_outbox_away")
    try:
        with pytest.raises(CommandError, match="migrate kafka_jobs --database default"):
            call_command("runkafkarelay", "--burst")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE kafka_jobs_outbox_away RENAME TO kafka_jobs_outbox")


@pytest.mark.django_db(transaction=True)
def test_a_relay_in_every_worker_process_is_refused_where_only_one_relay_may_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.management import CommandError, call_command

    from kafka_jobs.outbox import claim

    assert claim.several_relays_safe("default")  # SQLite: a relay stands by while another holds the lock
    monkeypatch.setattr(claim, "several_relays_safe", lambda alias: False)  # as on MySQL
    with pytest.raises(CommandError, match="only one relay may run"):
        call_command("runkafkaworker", "--processes", "2", "--skip-checks", "--relay")
