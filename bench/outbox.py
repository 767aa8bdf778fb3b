"""(6) The transactional outbox on PostgreSQL: enqueue rate in transactions of 1 and of 100 jobs, relay
throughput, and the wake-up latency (commit to acknowledged), against the direct produce_async rate.

Starts its own PostgreSQL server (tests/postgres.py: Debian's binaries, a loopback port) for the run.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.management import call_command
from django.db import connections, transaction

from kafka_jobs.conf import KafkaJobsSettings
from kafka_jobs.job import perform_all_later
from kafka_jobs.outbox.models import OutboxMessage
from kafka_jobs.outbox.relay import Relay
from kafka_jobs.producer import get_producer

from .env import Bench
from .jobs import NoopJob
from .report import Figure, Report
from .sizes import Sizes

SECTION = "outbox"
ALIAS = "postgres"
SQLITE = "sqlite"
LATENCY_SAMPLES = 30


class OutboxNoopJob(NoopJob):
    """NoopJob written to the outbox."""

    kafka_options = {"outbox": True}


@contextmanager
def postgres() -> Iterator[None]:
    """Start a PostgreSQL server, point the ``postgres`` alias at it and migrate it."""
    from tests.postgres import DATABASE, PostgresServer

    with PostgresServer() as server:
        server.create_database(DATABASE)
        connections.settings[ALIAS].update(PORT=str(server.port), USER=server.user, NAME=DATABASE)
        call_command("migrate", database=ALIAS, verbosity=0)
        try:
            yield
        finally:
            connections.close_all()


def _timed(count: int, action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def _direct_rate(count: int) -> float:
    def enqueue() -> None:
        for number in range(count):
            NoopJob.perform_later(number)
        if get_producer().flush(60):
            raise RuntimeError("messages left undelivered after 60s")

    return _timed(count, enqueue)


def _outbox_rate(count: int, per_transaction: int) -> float:
    def enqueue() -> None:
        for start in range(0, count, per_transaction):
            with transaction.atomic(using=ALIAS):
                for number in range(start, min(start + per_transaction, count)):
                    OutboxNoopJob.perform_later(number)

    return _timed(count, enqueue)


def _outbox_batch_rate(count: int, per_transaction: int) -> float:
    def enqueue() -> None:
        for start in range(0, count, per_transaction):
            with transaction.atomic(using=ALIAS):
                perform_all_later(OutboxNoopJob(n) for n in range(start, min(start + per_transaction, count)))

    return _timed(count, enqueue)


def _relay_rate(settings: KafkaJobsSettings) -> tuple[float, int]:
    rows = OutboxMessage.objects.using(ALIAS).count()
    relay = Relay(settings, ALIAS)
    started = time.perf_counter()
    relay.run(burst=True)
    return relay.produced / (time.perf_counter() - started), rows


@contextmanager
def sqlite_file() -> Iterator[None]:
    """Point the ``sqlite`` alias at a fresh file and migrate it."""
    with tempfile.TemporaryDirectory(prefix="kafka-jobs-bench-") as directory:
        connections.settings[SQLITE].update(NAME=str(Path(directory) / "outbox.sqlite3"))
        call_command("migrate", database=SQLITE, verbosity=0)
        try:
            yield
        finally:
            connections[SQLITE].close()


def _wake_up_latencies(settings: KafkaJobsSettings, alias: str = ALIAS) -> list[float]:
    """Commit one job at a time with a relay waiting; time until its row is gone (produced and acknowledged)."""
    stop = threading.Event()
    relay = Relay(settings, alias, stop=stop)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    latencies = []
    try:
        time.sleep(0.5)  # let the relay reach its wait (LISTEN)
        # The first sample (its producer's start and the topic's metadata) is a warm-up, not counted.
        for number in range(LATENCY_SAMPLES + 1):
            with transaction.atomic(using=alias):
                job = OutboxNoopJob.perform_later(number)
            committed = time.perf_counter()
            rows = OutboxMessage.objects.using(alias).filter(job_id=job.job_id)
            while rows.exists():
                time.sleep(0.002)
            latencies.append(time.perf_counter() - committed)
            time.sleep(random.uniform(0.02, 0.08))  # out of step with a polling relay's interval
    finally:
        stop.set()
        thread.join(30)
    return latencies[1:]


def run(bench: Bench, sizes: Sizes, report: Report) -> None:
    """Measure the outbox against direct produce_async in the same run (NoopJob's 6-partition queue)."""
    count = sizes.outbox
    scenario = bench.scenario(SECTION)
    with scenario.active() as settings, postgres():
        NoopJob.perform_later(-1)  # connect the producer before timing
        get_producer().flush(30)
        direct = _direct_rate(count)
        single = _outbox_rate(count // 10, 1)
        hundred = _outbox_rate(count, 100)
        batched = _outbox_batch_rate(count, 100)
        relayed, rows = _relay_rate(settings)
        latencies = _wake_up_latencies(settings)
    with scenario.active() as settings, sqlite_file():
        polled = _wake_up_latencies(settings, SQLITE)
    baseline = "perform_later, produce_async"
    report.add(Figure(SECTION, "outbox perform_later, 1 per transaction", single, "jobs/s", direct, baseline))
    report.add(Figure(SECTION, "outbox perform_later, 100 per transaction", hundred, "jobs/s", direct, baseline))
    report.add(Figure(SECTION, "outbox perform_all_later x100 per transaction", batched, "jobs/s", direct, baseline))
    report.add(Figure(SECTION, f"relay throughput ({rows} rows, one relay)", relayed, "rows/s", direct, baseline))
    report.add(
        Figure(
            SECTION,
            "wake-up: commit to acknowledged, median",
            statistics.median(latencies) * 1000,
            "ms",
            detail={"max_ms": max(latencies) * 1000, "samples": len(latencies)},
        )
    )
    report.add(Figure(SECTION, "wake-up: commit to acknowledged, max", max(latencies) * 1000, "ms"))
    report.add(
        Figure(
            SECTION,
            f"SQLite (poll {settings.outbox_poll_interval:g}s): commit to acknowledged, median",
            statistics.median(polled) * 1000,
            "ms",
            detail={"max_ms": max(polled) * 1000, "samples": len(polled)},
        )
    )
