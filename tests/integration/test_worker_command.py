"""``manage.py runkafkaworker`` at start: Django's system checks, and logging left to the project's LOGGING."""

from __future__ import annotations

import pytest

from kafka_jobs.producer import get_producer
from tests.integration.conftest import KafkaEnv
from tests.jobs import RecordJob, read_records

pytestmark = pytest.mark.integration


@pytest.mark.kafka_jobs_overrides({"ROUTES": "tests.kafka_routes_partial"})
def test_the_worker_runs_the_system_checks_at_start_and_shows_their_warnings(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    RecordJob.set(queue="single").perform_later(log, "ran anyway")
    get_producer().flush(10)

    worker = kafka_env.run_worker("--burst")

    output = worker.output()
    assert worker.proc.returncode == 0, output
    # tests.jobs.RecordJob uses queue "default", which these routes leave out.
    assert "kafka_jobs.W001" in output and "Job tests.jobs.RecordJob uses queue 'default'" in output
    assert [r["args"] for r in read_records(log)] == [["ran anyway"]]  # a warning does not stop the worker


def test_skip_checks_starts_without_them(kafka_env: KafkaEnv) -> None:
    worker = kafka_env.run_worker("--burst", "--skip-checks")

    assert worker.proc.returncode == 0, worker.output()
    assert "System check" not in worker.output()


def test_a_project_logging_only_to_the_root_logger_gets_the_worker_logs(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    job = RecordJob.perform_later(log, "logged")
    get_producer().flush(10)

    worker = kafka_env.start_worker("--burst", KAFKA_JOBS_TEST_ROOT_LOGGING="1")
    worker.wait(60)

    output = worker.output()
    assert worker.proc.returncode == 0, output
    # Through the project's root handler (its format), at INFO although the root logger is at WARNING:
    # runkafkaworker sets the kafka_jobs level (INFO unless LOGGING or --log-level says otherwise) and adds
    # no handler of its own.
    assert "ROOT kafka_jobs.worker INFO: Worker started" in output
    assert f"ROOT kafka_jobs.worker INFO: tests.jobs.RecordJob id={job.job_id} " in output
    assert "ROOT kafka_jobs.worker INFO: Worker stopped (--burst: no more jobs)" in output
    assert all(line.startswith("ROOT ") for line in output.splitlines() if "Worker started" in line)
