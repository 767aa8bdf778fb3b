"""The transactional outbox against a real broker, real PostgreSQL and SQLite, real processes (issue 12)."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.test import override_settings

from kafka_jobs import Job, perform_all_later
from kafka_jobs.conf import get_settings
from kafka_jobs.devbroker import DevBroker, die_with_parent
from kafka_jobs.outbox import sender
from kafka_jobs.outbox.models import OutboxMessage
from kafka_jobs.outbox.relay import Relay
from kafka_jobs.outbox.wakeup import CHANNEL, NotifyWaker
from tests.helpers import wait_for
from tests.integration.conftest import ROOT, KafkaEnv
from tests.integration.test_enqueue import read_envelopes
from tests.jobs import RecordJob, read_records

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 60.0


class KeyedJob(Job):
    """A job whose partition key is its first argument (read from the topic, never run)."""

    queue_as = "wide"
    kafka_options = {"partitioner": lambda job: job.args[0], "outbox": True}

    def perform(self, key: str, seq: int) -> None:
        pass


def outbox_rows(alias: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.using(alias).order_by("id"))


def relay_until_empty(alias: str, timeout: float = RUN_TIMEOUT) -> Relay:
    """Run an in-process relay (this test's settings) until no pending row is left."""
    relay = Relay(get_settings(), alias)
    thread = threading.Thread(target=relay.run, kwargs={"burst": True}, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the relay did not empty the outbox of {alias!r} in {timeout:g}s"
    return relay


def ran(log: str) -> list[int]:
    return sorted(record["args"][0] for record in read_records(log))


# --- SQLite (the default database) ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sqlite_committed_jobs_run_through_a_worker_relay_and_rolled_back_ones_never(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    with transaction.atomic():
        for n in range(3):
            RecordJob.set(outbox=True).perform_later(log, n)
    with pytest.raises(RuntimeError), transaction.atomic():
        RecordJob.set(outbox=True).perform_later(log, 99)
        raise RuntimeError("roll back")
    assert len(outbox_rows("default")) == 3

    worker = kafka_env.start_worker("--relay", "--queues", "default")
    wait_for(lambda: ran(log) == [0, 1, 2], RUN_TIMEOUT, message=lambda: f"ran {ran(log)}\n{worker.output()}")
    wait_for(lambda: not outbox_rows("default"), 10, message="the relayed rows were not deleted")
    worker.send(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    assert ran(log) == [0, 1, 2]  # 99 was rolled back


# --- PostgreSQL ---------------------------------------------------------------------------------------------


def test_postgres_rollback_leaves_nothing_and_commit_leaves_one_row(kafka_env: KafkaEnv, postgres_db: str) -> None:
    log = kafka_env.log_file()
    with pytest.raises(RuntimeError), transaction.atomic(using=postgres_db):
        RecordJob.set(outbox=True).perform_later(log, 1)
        raise RuntimeError("roll back")
    assert outbox_rows(postgres_db) == []
    with transaction.atomic(using=postgres_db):
        job = RecordJob.set(outbox=True).perform_later(log, 2)
    assert [row.job_id for row in outbox_rows(postgres_db)] == [job.job_id]


SQLITE = pytest.param("sqlite", marks=pytest.mark.django_db(transaction=True))


def database_alias(database: str, request: pytest.FixtureRequest) -> str:
    """Return the alias of ``database`` ("postgres" or "sqlite", the default SQLite file) for this test."""
    return str(request.getfixturevalue("postgres_db")) if database == "postgres" else "default"


@pytest.mark.parametrize(
    ("database", "outbox"),
    [("postgres", True), ("postgres", False), pytest.param("sqlite", True, marks=SQLITE.marks)],
    ids=["postgres", "postgres-after-commit-control", "sqlite"],
)
def test_commit_then_sigkill_of_the_enqueuing_process_still_runs_the_job(
    kafka_env: KafkaEnv, tmp_path: Path, database: str, outbox: bool, request: pytest.FixtureRequest
) -> None:
    alias = database_alias(database, request)
    log = kafka_env.log_file()
    # The enqueuing process holds produced messages for a minute: only the outbox can save them.
    env = kafka_env.env(
        KAFKA_JOBS_TEST_OVERRIDES=json.dumps({"PRODUCER": {"linger.ms": 60000}, "DELIVERY_TIMEOUT": 120})
    )
    enqueuer = subprocess.Popen(
        [sys.executable, "-m", "tests.outbox_enqueue", alias, log, "2", "1" if outbox else "0"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "enqueuer.log").open("wb"),
        preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509
    )
    try:
        assert enqueuer.stdout is not None
        line = enqueuer.stdout.readline()
        assert line == b"committed\n", (tmp_path / "enqueuer.log").read_text()
    finally:
        enqueuer.kill()  # SIGKILL, by PID
        enqueuer.wait(10)
    if not outbox:  # the control: the same crash without the outbox loses the jobs
        assert read_envelopes(kafka_env, "default") == []
        return
    assert len(outbox_rows(alias)) == 2
    relay = kafka_env.start_relay("--database", alias)
    worker = kafka_env.start_worker("--queues", "default")
    wait_for(lambda: ran(log) == [0, 1], RUN_TIMEOUT, message=lambda: f"ran {ran(log)}\n{relay.output()}")
    wait_for(lambda: not outbox_rows(alias), 10, message="the relayed rows were not deleted")
    for process in (relay, worker):
        process.send(signal.SIGTERM)
        assert process.wait() == 0, process.output()


@pytest.mark.parametrize("database", ["postgres", SQLITE])
def test_broker_down_at_commit_then_up_runs_the_job(
    kafka_env: KafkaEnv, tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    alias = database_alias(database, request)
    log = kafka_env.log_file()
    broker = DevBroker(log_path=tmp_path / "broker.log")
    port = broker.start().port  # started once to own a port, then down while the jobs commit
    broker.stop()
    down = f"127.0.0.1:{port}"
    settings_down = {**kafka_env.kafka_jobs_settings(), "BOOTSTRAP_SERVERS": down}
    with override_settings(KAFKA_JOBS=settings_down), transaction.atomic(using=alias):
        RecordJob.set(outbox=True).perform_later(log, 7)
    kafka_env.bootstrap = down  # the relay and the worker use the broker that is down
    relay = kafka_env.start_relay("--database", alias)
    wait_for(lambda: "not produced, retrying" in relay.output(), 30, message=relay.output)
    assert len(outbox_rows(alias)) == 1  # kept while the broker is down
    broker = DevBroker(port=port, log_path=tmp_path / "broker-again.log")
    broker.start()
    try:
        with override_settings(KAFKA_JOBS=settings_down):
            call_command("kafkatopics", "create", verbosity=0)
        worker = kafka_env.start_worker("--queues", "default")
        wait_for(lambda: ran(log) == [7], RUN_TIMEOUT, message=lambda: f"ran {ran(log)}\n{relay.output()}")
        wait_for(lambda: not outbox_rows(alias), 10, message="the relayed row was not deleted")
        for process in (relay, worker):
            process.kill()
    finally:
        broker.stop()


def test_postgres_two_relays_produce_10000_rows_exactly_once_in_per_key_order(
    kafka_env: KafkaEnv, postgres_db: str
) -> None:
    keys = [f"customer-{k}" for k in range(40)]
    total = 10_000
    for start in range(0, total, 100):  # transactions of 100 jobs
        with transaction.atomic(using=postgres_db):
            perform_all_later(KeyedJob(keys[n % len(keys)], n) for n in range(start, start + 100))
    assert OutboxMessage.objects.using(postgres_db).count() == total
    relays = [kafka_env.start_relay("--database", postgres_db, "--burst") for _ in range(2)]
    for relay in relays:
        assert relay.wait(180) == 0, relay.output()
    assert outbox_rows(postgres_db) == []

    envelopes = read_envelopes(kafka_env, "wide")
    seqs = [envelope.args[1] for envelope in envelopes]
    assert len(seqs) == total and sorted(seqs) == list(range(total))  # each exactly once
    by_key: dict[str, list[int]] = defaultdict(list)
    for envelope in envelopes:  # partition by partition, in offset order
        by_key[envelope.args[0]].append(envelope.args[1])
    assert all(seq == sorted(seq) for seq in by_key.values()), "a key's jobs were produced out of order"
    produced = [int(n) for relay in relays for n in re.findall(r"relayed (\d+) row", relay.output())]
    assert len(produced) == 2 and all(produced), f"both relays should have shared the work: {produced}"


def test_postgres_a_row_committed_later_with_a_lower_id_is_produced_after_the_rows_committed_before_it(
    kafka_env: KafkaEnv, postgres_db: str
) -> None:
    inserted = threading.Event()
    commit = threading.Event()

    def slow_transaction() -> None:  # takes the lower id, commits last
        try:
            with transaction.atomic(using=postgres_db):
                KeyedJob.perform_later("k", 1)
                inserted.set()
                assert commit.wait(30)
        finally:
            connections[postgres_db].close()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    assert inserted.wait(30)
    with transaction.atomic(using=postgres_db):
        KeyedJob.perform_later("k", 2)
    relay_until_empty(postgres_db)  # sees only the committed row, id 2
    commit.set()
    thread.join(30)
    relay_until_empty(postgres_db)  # now id 1: not skipped, and after 2 (commit order)
    assert [envelope.args[1] for envelope in read_envelopes(kafka_env, "wide")] == [2, 1]


@pytest.mark.parametrize("database", ["postgres", SQLITE])
def test_a_row_that_cannot_be_produced_is_marked_failed_reported_and_skipped(
    kafka_env: KafkaEnv, database: str, request: pytest.FixtureRequest
) -> None:
    alias = database_alias(database, request)
    with transaction.atomic(using=alias):
        KeyedJob.set(outbox=alias).perform_later("k", 1)
        too_large = KeyedJob.set(outbox=alias).perform_later("k", "x" * 2_000_000)
        KeyedJob.set(outbox=alias).perform_later("k", 3)
    relay = relay_until_empty(alias)
    assert (relay.produced, relay.failed) == (2, 1)
    (failed,) = outbox_rows(alias)
    assert failed.job_id == too_large.job_id and failed.failed_at is not None
    assert "too large" in failed.error.lower() or "size" in failed.error.lower(), failed.error
    assert [envelope.args[1] for envelope in read_envelopes(kafka_env, "wide")] == [1, 3]

    listing = io.StringIO()
    call_command("kafkaoutbox", "list", "--database", alias, stdout=listing)
    assert f"{alias}: 0 pending, 1 failed" in listing.getvalue()
    assert too_large.job_id in listing.getvalue() and failed.error in listing.getvalue()

    call_command("kafkaoutbox", "retry", "--ids", str(failed.id), "--database", alias, stdout=io.StringIO())
    assert [row.failed_at for row in outbox_rows(alias)] == [None]
    assert relay_until_empty(alias).failed == 1  # still too large: failed again, not retried forever
    call_command("kafkaoutbox", "purge", "--all", "--database", alias, stdout=io.StringIO())
    assert outbox_rows(alias) == []


def test_a_row_for_a_partition_that_stays_missing_fails_after_the_grace_period(
    kafka_env: KafkaEnv, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender, "MISSING_GRACE_SECONDS", 0.5)
    log = kafka_env.log_file()
    with transaction.atomic(using=postgres_db):
        RecordJob.set(outbox=True, partition=5).perform_later(log, 1)  # "default" has 2 partitions
        RecordJob.set(outbox=True, partition=1).perform_later(log, 2)
    started = time.monotonic()
    relay = relay_until_empty(postgres_db)
    assert (relay.produced, relay.failed) == (1, 1)
    assert time.monotonic() - started >= 0.5  # retried meanwhile, not failed at the first look
    (failed,) = outbox_rows(postgres_db)
    assert "partition 5 does not exist" in failed.error


def test_postgres_a_relay_killed_mid_batch_loses_nothing_another_relay_takes_over(
    kafka_env: KafkaEnv, postgres_db: str
) -> None:
    keys = [f"customer-{k}" for k in range(10)]
    total = 3000
    for start in range(0, total, 100):
        with transaction.atomic(using=postgres_db):
            perform_all_later(KeyedJob(keys[n % len(keys)], n) for n in range(start, start + 100))
    first = kafka_env.start_relay("--database", postgres_db)

    def left() -> int:
        return OutboxMessage.objects.using(postgres_db).count()

    wait_for(lambda: left() < total, 60, message=first.output)  # it has produced and deleted some
    first.kill()  # SIGKILL mid-work: its lanes are freed with its connection
    assert left() > 0, "the relay finished before it could be killed: make the backlog larger"
    second = kafka_env.start_relay("--database", postgres_db, "--burst")
    assert second.wait(120) == 0, second.output()
    assert left() == 0

    envelopes = read_envelopes(kafka_env, "wide")
    seqs = [envelope.args[1] for envelope in envelopes]
    assert set(seqs) == set(range(total))  # nothing lost (a row produced before the kill may come twice)
    by_key: dict[str, list[int]] = defaultdict(list)
    for envelope in envelopes:
        seen = by_key[envelope.args[0]]
        if envelope.args[1] not in seen:
            seen.append(envelope.args[1])
    assert all(seq == sorted(seq) for seq in by_key.values()), "a key's jobs were produced out of order"


@pytest.mark.django_db(transaction=True)
def test_sqlite_a_second_relay_stands_by_so_each_row_is_produced_once(kafka_env: KafkaEnv) -> None:
    first = kafka_env.start_relay()
    wait_for(lambda: "Relaying the outbox" in first.output(), 30, message=first.output)
    second = kafka_env.start_relay()
    wait_for(lambda: "standing by" in second.output(), 30, message=second.output)
    total = 1000
    with transaction.atomic():
        perform_all_later(KeyedJob(f"k{n % 7}", n) for n in range(total))
    wait_for(lambda: not outbox_rows("default"), 60, message=lambda: first.output() + second.output())
    for relay in (first, second):
        relay.send(signal.SIGTERM)
        assert relay.wait() == 0, relay.output()
    assert "relayed 0 row(s)" in second.output()
    seqs = [envelope.args[1] for envelope in read_envelopes(kafka_env, "wide")]
    assert sorted(seqs) == list(range(total))  # each exactly once


def test_postgres_relays_are_notified_at_commit_and_never_for_a_rollback(kafka_env: KafkaEnv, postgres_db: str) -> None:
    log = kafka_env.log_file()
    waker = NotifyWaker(postgres_db, threading.Event())
    try:
        listening = waker._conn
        assert listening is not None, "LISTEN failed"
        with pytest.raises(RuntimeError), transaction.atomic(using=postgres_db):
            RecordJob.set(outbox=True).perform_later(log, 1)
            raise RuntimeError("roll back")
        assert list(listening.notifies(timeout=0.5)) == []
        with transaction.atomic(using=postgres_db):
            RecordJob.set(outbox=True).perform_later(log, 2)
            RecordJob.set(outbox=True).perform_later(log, 3)
        (notification,) = list(listening.notifies(timeout=10, stop_after=1))
        assert notification.channel == CHANNEL
    finally:
        waker.close()
