"""Custom job context through Kafka: the tenant current at perform_later is current in the worker's job."""

from __future__ import annotations

import pytest

from kafka_jobs.producer import get_producer
from tests.integration.conftest import KafkaEnv
from tests.jobs import TENANT, TenantJob, read_records

pytestmark = pytest.mark.integration


@pytest.mark.kafka_jobs_overrides({"CONTEXT": ["tests.jobs.TENANT_CONTEXT"]})
@pytest.mark.django_db(transaction=True)
def test_tenant_travels_from_perform_later_to_the_worker(kafka_env: KafkaEnv) -> None:
    log = kafka_env.log_file()
    token = TENANT.set("acme")
    try:
        TenantJob.set(partition=0).perform_later(log)
    finally:
        TENANT.reset(token)
    TenantJob.set(partition=0).perform_later(log)  # enqueued without a tenant: runs without one
    get_producer().flush(10)
    worker = kafka_env.run_worker("--burst", "--concurrency", "1")
    assert worker.proc.returncode == 0, worker.output()
    assert [r["tenant"] for r in read_records(log)] == ["acme", None]
