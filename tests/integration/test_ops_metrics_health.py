"""The worker's Prometheus endpoint and its health file, with a real broker and a real worker."""

from __future__ import annotations

import signal
import socket
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from prometheus_client.parser import text_string_to_metric_families

from kafka_jobs.producer import get_producer
from tests.helpers import wait_for
from tests.integration.conftest import KafkaEnv
from tests.jobs import FailingJob, RecordJob

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def value(text: str, name: str, **labels: str) -> float | None:
    """Return the value of the sample ``name`` with exactly ``labels`` in a scrape, or None."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


@pytest.mark.kafka_jobs_overrides({"REPORT_INTERVAL": 0.5, "BACKOFF": {"INITIAL": 30.0, "MAX": 30.0}})
@pytest.mark.django_db(transaction=True)
def test_metrics_endpoint_counts_jobs_and_shows_lag_and_paused_partitions(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    RecordJob.set(partition=0).perform_later(log, 1)
    RecordJob.set(partition=0).perform_later(log, 2)
    FailingJob.set(partition=1).perform_later(log, 5)
    get_producer().flush(10)
    port = free_port()
    worker = kafka_env.start_worker("--metrics-port", str(port))
    default = {"queue": "default", "topic": kafka_env.topic("default")}

    def retrying_and_counted() -> str:
        text = scrape(port)
        paused = value(text, "kafka_jobs_partition_paused", **default, partition="1")
        return text if paused == 1 and value(text, "kafka_jobs_jobs_succeeded_total", queue="default") == 2 else ""

    text = wait_for(
        retrying_and_counted,
        timeout=30,
        message=lambda: scrape(port) + worker.output()[-2000:],
    )
    assert value(text, "kafka_jobs_jobs_succeeded_total", queue="default") == 2
    assert value(text, "kafka_jobs_jobs_failed_total", queue="default") == 1
    assert value(text, "kafka_jobs_jobs_retried_total", queue="default") == 1
    assert value(text, "kafka_jobs_jobs_dead_lettered_total", queue="default") == 0
    assert value(text, "kafka_jobs_job_duration_seconds_count", queue="default") == 3
    assert value(text, "kafka_jobs_job_duration_seconds_bucket", queue="default", le="+Inf") == 3
    assert value(text, "kafka_jobs_partition_lag", **default, partition="0") == 0
    assert value(text, "kafka_jobs_partition_lag", **default, partition="1") == 1
    assert value(text, "kafka_jobs_partition_retrying", **default, partition="1") == 1
    assert value(text, "kafka_jobs_partition_held", **default, partition="1") == 0
    assert value(text, "kafka_jobs_running_jobs", queue="default") == 0
    assert value(text, "process_resident_memory_bytes") is not None
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()


@pytest.mark.django_db(transaction=True)
def test_metrics_port_in_use_is_a_clear_error(kafka_env: KafkaEnv) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = kafka_env.start_worker("--metrics-port", str(port))
        assert worker.wait(60) == 1
    assert f"Could not serve metrics on 127.0.0.1:{port}" in worker.output()


@pytest.mark.django_db(transaction=True)
def test_health_command_fails_when_the_poll_loop_stops(kafka_env: KafkaEnv, tmp_path: Path) -> None:
    health = str(tmp_path / "health.json")
    with pytest.raises(CommandError, match="No health file") as missing:
        call_command("kafkaworkerhealth", "--file", health)
    assert missing.value.returncode == 1

    worker = kafka_env.start_worker("--health-file", health)
    wait_for(lambda: Path(health).exists(), timeout=30, message=lambda: worker.output()[-2000:])
    call_command("kafkaworkerhealth", "--file", health, verbosity=0)

    worker.send(signal.SIGSTOP)  # the loop stops turning
    try:

        def stuck() -> bool:
            try:
                call_command("kafkaworkerhealth", "--file", health, "--max-loop-age", "1.5", verbosity=0)
            except CommandError as exc:
                assert exc.returncode == 2, exc
                return True
            return False

        wait_for(stuck, timeout=15, interval=0.2)
    finally:
        worker.send(signal.SIGCONT)
    wait_for(lambda: _healthy(health), timeout=15, interval=0.2)
    worker.send(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    assert not Path(health).exists()  # a stopped worker is not alive


def _healthy(path: str) -> bool:
    try:
        call_command("kafkaworkerhealth", "--file", path, "--max-loop-age", "1.5", verbosity=0)
    except CommandError:
        return False
    return True


def _two_free_neighbouring_ports() -> int:
    """Return a port that is free with the one after it (tried up to 50 times: never a silent skip)."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return int(port)
    raise AssertionError("found no two free neighbouring ports on 127.0.0.1 in 50 tries")


@pytest.mark.django_db(transaction=True)
def test_each_worker_process_serves_its_own_metrics_and_health_file(kafka_env: KafkaEnv, tmp_path: Path) -> None:
    port = _two_free_neighbouring_ports()
    health = str(tmp_path / "health.json")
    supervisor = kafka_env.start_worker("--processes", "2", "--metrics-port", str(port), "--health-file", health)
    for index, worker_port in ((1, port), (2, port + 1)):
        wait_for(
            lambda p=worker_port: "kafka_jobs_jobs_succeeded_total" in scrape(p),
            timeout=60,
            message=lambda: supervisor.output()[-3000:],
        )
        wait_for(lambda i=index: Path(f"{health}.{i}").exists(), timeout=30)
    wait_for(lambda: _healthy(health), timeout=15, interval=0.2)
    supervisor.send(signal.SIGTERM)
    assert supervisor.wait(60) == 0, supervisor.output()
    assert not Path(f"{health}.1").exists() and not Path(f"{health}.2").exists()
