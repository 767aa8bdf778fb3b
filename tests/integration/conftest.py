"""Integration fixtures: a per-test queue prefix and consumer group, and real worker subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from kafka_jobs import backends, producer
from kafka_jobs.devbroker import die_with_parent

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One ``manage.py runkafkaworker`` (or other command's) subprocess; stopped by its PID."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, command: str = "runkafkaworker") -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", command, *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - a dead test run leaves no worker
        )
        self.pid = self.proc.pid

    def send(self, sig: int) -> None:
        """Send ``sig`` to the worker, by PID."""
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the worker to exit and return its status."""
        return self.proc.wait(timeout)

    def output(self) -> str:
        """Return everything the worker logged so far."""
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker (by PID) if it still runs, and reap it."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()


class KafkaEnv:
    """Per-test topics (a unique queue prefix), group, and worker processes sharing them."""

    def __init__(self, bootstrap: str, tmp_path: Path, name: str) -> None:
        self.bootstrap = bootstrap
        self.tmp_path = tmp_path
        token = uuid.uuid4().hex[:8]
        self.prefix = f"t-{name[:40]}-{token}-"
        self.group_id = f"g-{token}"
        self.workers: list[WorkerProcess] = []
        self.overrides: dict[str, Any] = {}

    def kafka_jobs_settings(self) -> dict[str, Any]:
        """The KAFKA_JOBS dict the test process uses (the workers build the same from the environment)."""
        from django.conf import settings

        return {
            **settings.KAFKA_JOBS,
            "BOOTSTRAP_SERVERS": self.bootstrap,
            "QUEUE_PREFIX": self.prefix,
            "GROUP_ID": self.group_id,
            **self.overrides,
        }

    def topic(self, queue: str) -> str:
        """Return the topic name of ``queue`` in this test."""
        return self.prefix + queue

    def env(self, **extra: str) -> dict[str, str]:
        """Return the environment for a worker subprocess."""
        import json

        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "JOB_BACKEND": "kafka",
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_JOBS_QUEUE_PREFIX": self.prefix,
            "KAFKA_JOBS_GROUP_ID": self.group_id,
            "KAFKA_JOBS_TEST_DB": str(connection.settings_dict["NAME"]),
            # The user's overrides (e.g. for another broker) stay; this test's come on top.
            "KAFKA_JOBS_TEST_OVERRIDES": json.dumps(
                {**json.loads(os.environ.get("KAFKA_JOBS_TEST_OVERRIDES", "{}")), **self.overrides}
            ),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def start_worker(self, *args: str, **env: str) -> WorkerProcess:
        """Start ``runkafkaworker`` with ``args``; it is killed (by PID) at the end of the test."""
        log = self.tmp_path / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(list(args), self.env(**env), log)
        self.workers.append(worker)
        return worker

    def start_relay(self, *args: str, **env: str) -> WorkerProcess:
        """Start ``runkafkarelay`` with ``args``; it is killed (by PID) at the end of the test."""
        log = self.tmp_path / f"relay-{len(self.workers)}.log"
        relay = WorkerProcess(list(args), self.env(**env), log, command="runkafkarelay")
        self.workers.append(relay)
        return relay

    def run_worker(self, *args: str, timeout: float = 60.0) -> WorkerProcess:
        """Run a worker to completion (use with --burst or --max-jobs) and return it."""
        worker = self.start_worker(*args)
        worker.wait(timeout)
        return worker

    def committed(self, queue: str, partition: int = 0) -> int:
        """Return this test's group's committed offset for a partition of ``queue`` (negative if none)."""
        return self.committed_offsets(queue, partition + 1)[partition]

    def committed_offsets(self, queue: str, partitions: int) -> list[int]:
        """Return the group's committed offsets for partitions 0..partitions-1 of ``queue``."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group_id})
        try:
            tps = [TopicPartition(self.topic(queue), p) for p in range(partitions)]
            return [tp.offset for tp in consumer.committed(tps, timeout=10)]
        finally:
            consumer.close()

    def log_file(self, name: str = "jobs.log") -> str:
        """Return the path of a job record file for this test."""
        return str(self.tmp_path / name)


@pytest.fixture(scope="session")
def migrated_test_db(django_db_setup: None, django_db_blocker: Any) -> None:
    """Migrate the file database the worker processes share, as a deployment's would be (a worker refuses to
    start when the task results table is missing), whether or not a test of this process used it before."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("migrate", verbosity=0)


@pytest.fixture
def kafka_env(
    kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest, migrated_test_db: None
) -> Iterator[KafkaEnv]:
    """Point this process at the test broker with unique topics; create the routed topics."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)
    env = KafkaEnv(kafka_bootstrap, tmp_path, name)
    marker = request.node.get_closest_marker("kafka_jobs_overrides")
    if marker is not None:
        env.overrides.update(marker.args[0])
    with override_settings(JOB_BACKEND="kafka", KAFKA_JOBS=env.kafka_jobs_settings()):
        call_command("kafkatopics", "create", verbosity=0)
        try:
            yield env
        finally:
            for worker in env.workers:
                worker.kill()
            producer.close_producer()
            backends.reset()
